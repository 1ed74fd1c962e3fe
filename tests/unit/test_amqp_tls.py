"""Broker TLS from ``server.amqp``: the config keys become kombu's ``ssl`` option.

No broker with TLS runs in the tests, so these check the mapping (and the
kombu Connection it builds), not a TLS handshake.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from epum.errors import ConfigError
from epum.messaging.connection import connection_from_settings, ssl_options
from epum.settings import AmqpSettings, settings_from_dict


def amqp(**keys) -> AmqpSettings:
    return settings_from_dict({"server": {"amqp": keys}}).amqp


@pytest.fixture
def pem(tmp_path: Path) -> dict[str, str]:
    files = {}
    for name in ("ca", "cert", "key"):
        path = tmp_path / f"{name}.pem"
        path.write_text("not read until the handshake\n")
        files[name] = str(path)
    return files


def test_no_tls_by_default():
    assert ssl_options(amqp()) is False
    assert connection_from_settings(amqp()).ssl is False


def test_ssl_true_verifies_the_broker_against_the_system_store():
    assert ssl_options(amqp(ssl=True)) == {"cert_reqs": ssl.CERT_REQUIRED}


def test_an_amqps_url_turns_tls_on():
    options = ssl_options(amqp(url="amqps://u:p@broker:5671//"))
    assert options == {"cert_reqs": ssl.CERT_REQUIRED}


def test_ca_client_certificate_and_key_are_mapped(pem):
    settings = amqp(
        host="broker",
        ssl_ca_certs=pem["ca"],
        ssl_certfile=pem["cert"],
        ssl_keyfile=pem["key"],
    )
    expected = {
        "ca_certs": pem["ca"],
        "certfile": pem["cert"],
        "keyfile": pem["key"],
        "cert_reqs": ssl.CERT_REQUIRED,
    }
    assert ssl_options(settings) == expected
    assert connection_from_settings(settings).ssl == expected


def test_verification_can_be_turned_off(pem):
    options = ssl_options(amqp(ssl_ca_certs=pem["ca"], ssl_verify=False))
    assert options == {"ca_certs": pem["ca"], "cert_reqs": ssl.CERT_NONE}


def test_a_missing_file_is_a_config_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"server\.amqp\.ssl_ca_certs"):
        ssl_options(amqp(ssl_ca_certs=str(tmp_path / "absent.pem")))


def test_a_key_without_a_certificate_is_refused(pem):
    with pytest.raises(ConfigError, match="ssl_keyfile needs ssl_certfile"):
        amqp(ssl_keyfile=pem["key"])
