"""The RabbitMQ management API and plugins for tests: enabled on the shared broker when off.

``rabbitmq-plugins enable rabbitmq_management`` does not restart the broker,
so it is safe on a broker other test runs use.
"""

from __future__ import annotations

import pytest
import requests

from bench.common import ensure_rabbit_plugin
from tests.kit import wait_until

MANAGEMENT_URL = "http://127.0.0.1:15672"


def management_answers(url: str = MANAGEMENT_URL) -> bool:
    """True when the management API answers an authenticated overview request."""
    try:
        return requests.get(url + "/api/overview", auth=("guest", "guest"), timeout=2).ok
    except requests.RequestException:
        return False


def ensure_management(url: str = MANAGEMENT_URL, wait: float = 60.0) -> str:
    """Enable the management plugin if its API does not answer; return its URL."""
    if management_answers(url):
        return url
    ensure_plugin("rabbitmq_management")
    wait_until(
        lambda: management_answers(url),
        wait,
        what=f"{url} to answer after enabling rabbitmq_management",
        interval=0.5,
    )
    return url


def ensure_plugin(name: str) -> None:
    """Enable the RabbitMQ plugin ``name`` on the shared broker if it is off (no restart;
    ``rabbitmq-plugins enable`` returns once the plugin runs)."""
    try:
        ensure_rabbit_plugin(name)
    except RuntimeError as exc:
        pytest.fail(str(exc))
