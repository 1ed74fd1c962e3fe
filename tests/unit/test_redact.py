"""Secrets never printed: URL errors echo nothing of the URL, and the
redacting filter masks every configured secret in any library's log lines."""

from __future__ import annotations

import logging

import pytest

from epum.messaging.connection import URL_ERRORS, make_connection
from epum.redact import MASK, RedactingFilter, install_redaction, secrets_of
from epum.settings import settings_from_dict

BAD_URLS = {
    "amqp://op:s3cr%40t@broker.example:notaport//": "port",
    "amqp://op:s3cr%40t@[broker.example//": "parse",
    "nosuch://op:s3cr%40t@broker.example//": "transport",
    "amqp://op:s3cr%40t@broker.example:5672//;amqp://op:s3cr%40t@b2:x//": "port",
}


@pytest.mark.parametrize("url", BAD_URLS)
def test_a_bad_broker_url_is_named_without_echoing_any_part_of_it(url):
    with pytest.raises(ValueError) as caught:
        make_connection(url)
    message = str(caught.value)
    assert message == URL_ERRORS[BAD_URLS[url]]
    for part in ("op", "s3cr", "broker.example", "nosuch", "notaport"):
        assert part not in message


def test_secrets_of_the_settings_include_url_passwords_and_their_encodings():
    settings = settings_from_dict(
        {
            "server": {
                "amqp": {"url": "amqp://u:p%40ss@h//;amqp://u:other@h2//", "password": "amqppw"},
                "zookeeper": {"username": "zk", "password": "zk pw"},
            }
        }
    )
    found = secrets_of(settings)
    assert {"p@ss", "p%40ss", "other", "amqppw", "zk pw", "zk%20pw"} <= found
    assert "u" not in found and "zk" not in found


def test_a_password_that_is_its_user_name_is_not_masked():
    defaults = settings_from_dict({})  # guest / guest
    assert "guest" not in secrets_of(defaults)
    same = settings_from_dict({"server": {"amqp": {"url": "amqp://ops:ops@h//"}}})
    assert "ops" not in secrets_of(same)


def record(msg, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("kazoo.client", logging.DEBUG, __file__, 1, msg, args, exc_info)


def test_the_filter_masks_message_arguments_and_tracebacks():
    redactor = RedactingFilter({"hunter2", "hunter"})
    rec = record("Auth(scheme=%r, credential=%r)", "digest", "zk:hunter2")
    assert redactor.filter(rec)
    assert rec.getMessage() == f"Auth(scheme='digest', credential='zk:{MASK}')"
    try:
        raise RuntimeError("cannot log in with hunter2")
    except RuntimeError:
        import sys

        rec = record("failed", exc_info=sys.exc_info())
    redactor.filter(rec)
    assert "hunter2" not in logging.Formatter().format(rec)
    assert "hunter" not in logging.Formatter().format(rec).replace(MASK, "")


def test_installed_on_handlers_it_masks_records_from_every_logger():
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            lines.append(self.format(rec))

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    redactor = None
    try:
        redactor = install_redaction({"s3cret"})
        logging.getLogger("kombu.connection").warning("login %s", "guest:s3cret")
        logging.getLogger("kazoo.protocol").warning("credential=s3cret")
    finally:
        root.removeHandler(handler)
        for logger in [root, *logging.Logger.manager.loggerDict.values()]:
            for other in getattr(logger, "handlers", []):
                other.removeFilter(redactor)
    assert lines == [f"login guest:{MASK}", f"credential={MASK}"]
