"""Keeping the configured secrets out of every log line.

``secrets_of(settings)`` collects what must never be printed: each setting
declared ``secret`` (the broker and ZooKeeper passwords) and the password
inside ``server.amqp.url``, each also as it appears URL-encoded.
``install_redaction(secrets)`` puts a ``RedactingFilter`` on every handler
the logging config made (the root's and each named logger's), so records
from any library (kazoo's and kombu's debug output included) are redacted
on their way out: each secret in the message, its arguments or the
formatted traceback becomes ``****``.  A handler-level filter is what sees
records propagated from other loggers; a logger-level one would not.

Redaction is plain substring replacement: a secret that is also an
ordinary word is masked wherever that word appears.  A password equal to
a configured user name (``guest``/``guest``) is not masked: it is printed
as the user name anyway.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "****"


def _url_passwords(url: str) -> list[str]:
    passwords = []
    for part in url.split(";"):  # kombu's failover URLs
        try:
            password = urlsplit(part).password
        except ValueError:  # an unparsable URL: take what follows the user
            _, _, rest = part.partition("://")
            userinfo = rest.rpartition("@")[0]
            password = userinfo.partition(":")[2] or None
        if password:
            passwords.append(password)
    return passwords


def _url_users(url: str) -> list[str]:
    users = []
    for part in url.split(";"):
        try:
            user = urlsplit(part).username
        except ValueError:
            continue
        if user:
            users.append(user)
    return users


def secrets_of(settings: object) -> set[str]:
    """Every secret value of a settings tree (see the module docstring), non-empty.

    A password equal to a configured user name (RabbitMQ's ``guest``/``guest``)
    is left out: it is printed as that user name wherever the user is, so
    masking it would only hide the user (``****:****@``) and protect nothing.
    """
    found: set[str] = set()
    users: set[str] = set()

    def walk(node: object) -> None:
        if not dataclasses.is_dataclass(node) or isinstance(node, type):
            return
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if f.metadata.get("secret") and isinstance(value, str):
                found.add(value)
            elif f.name == "url" and isinstance(value, str):
                found.update(_url_passwords(value))
                users.update(unquote(u) for u in _url_users(value))
            elif f.name == "username" and isinstance(value, str):
                users.add(value)
            else:
                walk(value)

    walk(settings)
    variants = set()
    for secret in found:
        if unquote(secret) in users:
            continue
        variants.update({secret, unquote(secret), quote(secret, safe=""), quote(secret)})
    return {s for s in variants if s}


class RedactingFilter(logging.Filter):
    """Replaces each of ``secrets`` in a record's message and traceback with ``****``.

    It never drops a record.  Longer secrets are replaced first, so one
    that contains another is masked whole.
    """

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every secret masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always True."""
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep its parts, redacted
            message = f"{record.msg} {record.args}"
        redacted = self.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redaction(secrets: Iterable[str]) -> RedactingFilter:
    """Put one ``RedactingFilter`` on every handler now configured (replacing any
    earlier one); return it."""
    redactor = RedactingFilter(secrets)
    loggers = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redactor)
    return redactor
