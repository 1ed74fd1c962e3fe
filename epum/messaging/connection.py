"""Broker connections: the URL from config, masked for logs, and kombu entities.

The only place that knows how ``server.amqp`` becomes a kombu ``Connection``
and how the exchange and a service queue are declared.
"""

from __future__ import annotations

import os
import re
import ssl as stdlib_ssl
from typing import Any
from urllib.parse import quote, urlsplit

from kombu import Connection, Exchange, Queue

from epum.errors import ConfigError
from epum.messaging.chunked_reads import ChunkedAmqpTransport
from epum.messaging.names import Names
from epum.settings import AmqpSettings


def broker_url(amqp: AmqpSettings) -> str:
    """The broker URL of ``amqp``: its ``url`` if set, else built from the parts."""
    if amqp.url:
        return amqp.url
    user = quote(amqp.username, safe="")
    password = quote(amqp.password, safe="")
    vhost = quote(amqp.vhost, safe="")
    return f"amqp://{user}:{password}@{amqp.host}:{amqp.port}/{vhost}"


def failover_urls(url: str) -> list[str]:
    """The URLs of kombu's ``;``-separated failover list ``url`` (one for a plain URL)."""
    return re.split(r";(?=[\w+.-]+://)", url)


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``****`` (safe to log).

    Each of kombu's ``;``-separated failover URLs is masked, and a password
    is taken to run to the last ``@`` of its URL, so one holding characters
    it should have had escaped (``#``, ``/``, ``?``, ``@``, ``;``) is masked whole.
    """
    return ";".join(_mask_one(part) for part in failover_urls(url))


def broker_address(connection: Connection) -> str:
    """Where ``connection`` goes, for logs: its URL, password masked, scheme as written."""
    uri = connection.as_uri(include_password=True)
    if connection.transport_cls is ChunkedAmqpTransport:  # kombu writes the class there
        uri = "amqp" + uri[uri.index("://") :]
    return mask_url(uri)


def _mask_one(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<unparsable broker url>" if "@" in url else url
    userinfo, at, hostpart = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:****@{hostpart}"


def ssl_options(amqp: AmqpSettings) -> bool | dict[str, Any]:
    """kombu's ``ssl`` option for ``server.amqp``: False, or py-amqp's TLS options.

    TLS is on with ``ssl: true``, an ``amqps://`` URL, or any of the CA,
    certificate or key files; then the broker's certificate is verified
    (against ``ssl_ca_certs``, else the system's CA store) unless
    ``ssl_verify`` is false, and ``ssl_certfile``/``ssl_keyfile`` are the
    client certificate and its key.  ConfigError naming the key if one of
    those files does not exist.
    """
    files = {
        "ca_certs": amqp.ssl_ca_certs,
        "certfile": amqp.ssl_certfile,
        "keyfile": amqp.ssl_keyfile,
    }
    url_tls = bool(amqp.url) and amqp.url.lower().startswith("amqps://")
    if not (amqp.ssl or url_tls or any(files.values())):
        return False
    options: dict[str, Any] = {}
    for key, path in files.items():
        if path is None:
            continue
        if not os.path.isfile(path):
            raise ConfigError(f"server.amqp.ssl_{key}: no such file {path!r}")
        options[key] = path
    options["cert_reqs"] = stdlib_ssl.CERT_REQUIRED if amqp.ssl_verify else stdlib_ssl.CERT_NONE
    return options


def make_connection(
    url: str,
    *,
    heartbeat: float | None = None,
    ssl: bool | dict[str, Any] = False,
    name: str | None = None,
    connect_timeout: float = 5.0,
) -> Connection:
    """A (lazy) kombu Connection; ``name`` shows in the broker's connection list.

    ``ssl`` is kombu's option: False, True, or TLS options (``ssl_options``).
    A plain ``amqp://`` broker is read in chunks (``epum.messaging.chunked_reads``).

    Raises ValueError saying what is wrong, and echoing nothing of the URL, when
    it cannot be parsed, its port is no number or it names no known transport.
    """
    check_broker_url(url)
    transport_options = {}
    if name:
        transport_options["client_properties"] = {"connection_name": name}
    plain = not ssl and all(part.lower().startswith("amqp://") for part in failover_urls(url))
    try:
        return Connection(
            url,
            heartbeat=heartbeat or None,
            ssl=ssl,
            connect_timeout=connect_timeout,
            transport_options=transport_options,
            transport=ChunkedAmqpTransport if plain else None,
        )
    except KeyError:
        raise ValueError(URL_ERRORS["transport"]) from None


def sibling_connection(connection: Connection, role: str) -> Connection:
    """A (lazy) clone of ``connection``, to the same broker with the same options, whose
    name in the broker's connection list (if it has one) ends in ``:<role>``."""
    options = dict(connection.transport_options or {})
    properties = dict(options.get("client_properties") or {})
    if "connection_name" in properties:
        properties["connection_name"] = f"{properties['connection_name']}:{role}"
        options["client_properties"] = properties
    return connection.clone(transport_options=options)


#: What is wrong with a broker URL, said without any part of it (a URL may
#: hold a password, and a mistyped one is still a secret).
URL_ERRORS = {
    "parse": "the broker URL cannot be parsed (is a host in [] brackets malformed?)",
    "port": "the broker URL's port is not a number from 1 to 65535",
    "transport": "the broker URL names no transport kombu knows; use amqp:// or amqps://",
}


def check_broker_url(url: str) -> None:
    """ValueError (one of ``URL_ERRORS``, echoing nothing of ``url``) if it is unusable.

    Checks each of kombu's ``;``-separated failover URLs: that it parses,
    its port is a number, and (after ``Connection``) its scheme is known.
    """
    for part in failover_urls(url):
        try:
            port = urlsplit(part).port
        except ValueError:
            message = URL_ERRORS["port"] if _port_error(part) else URL_ERRORS["parse"]
            raise ValueError(message) from None
        if port == 0:
            raise ValueError(URL_ERRORS["port"])


def _port_error(part: str) -> bool:
    try:
        urlsplit(part).hostname  # noqa: B018 - only whether it parses
    except ValueError:
        return False
    return True


def connection_from_settings(
    amqp: AmqpSettings, name: str | None = None, *, heartbeat: bool = True
) -> Connection:
    """A kombu Connection for ``server.amqp`` (its ssl; its heartbeat unless told not to).

    Only a consuming connection should have heartbeats: the consumer loop
    checks them, while an idle client connection with heartbeats would be
    closed by the broker for missing them.
    """
    return make_connection(
        broker_url(amqp),
        heartbeat=amqp.heartbeat if heartbeat else None,
        ssl=ssl_options(amqp),
        name=name,
    )


def exchange(names: Names) -> Exchange:
    """The system's direct exchange.

    Declared not durable and not auto-deleted, as dashi declares it, so
    dashi clients and we can both declare it without a conflict.
    """
    return Exchange(names.exchange, type="direct", durable=False, auto_delete=False)


def service_queue(names: Names, service: str) -> Queue:
    """The durable queue of ``service``, bound under its own name as routing key.

    No expiry and no auto-delete: requests wait while no worker runs.
    """
    qualified = names.qualify(service)
    return Queue(
        qualified,
        exchange(names),
        routing_key=qualified,
        durable=True,
        auto_delete=False,
    )
