"""The retry policy of reports the store could not take, and its settings."""

from __future__ import annotations

import math

import pytest

from epum.config import config_from_dict
from epum.errors import ConfigError
from epum.messaging.names import Names
from epum.messaging.retry import (
    RETRIES_HEADER,
    RetryPolicy,
    copy_headers,
    dead_letter_queue,
    retries_so_far,
    retry_queue,
    short_reason,
)


def test_the_delays_double_up_to_the_cap():
    policy = RetryPolicy(retries=6, delay=0.5, delay_max=3.0)
    assert [policy.delay_ms(n) for n in range(6)] == [500, 1000, 2000, 3000, 3000, 3000]
    assert policy.delays_ms() == [500, 1000, 2000, 3000]  # one retry queue each


def test_no_retries_means_no_retry_queue():
    assert RetryPolicy(retries=0).delays_ms() == []


def test_a_late_retry_number_does_not_overflow():
    assert RetryPolicy(retries=10_000, delay=1.0, delay_max=5.0).delay_ms(9_999) == 5000


def test_the_defaults_are_the_settings_defaults():
    cfg = config_from_dict({}, env={})
    assert RetryPolicy.from_settings(cfg.amqp) == RetryPolicy()
    assert RetryPolicy() == RetryPolicy(retries=10, delay=1.0, delay_max=30.0, dead_letter=False)
    assert cfg.amqp.dtrs_timeout == 2.0


def test_the_settings_come_from_the_config_file():
    cfg = config_from_dict(
        {
            "server": {
                "amqp": {
                    "store_retries": 3,
                    "store_retry_delay": 0.25,
                    "store_retry_delay_max": 2,
                    "dead_letter": True,
                    "dtrs_timeout": 0.5,
                }
            }
        },
        env={},
    )
    assert cfg.warnings == ()
    assert RetryPolicy.from_settings(cfg.amqp) == RetryPolicy(3, 0.25, 2.0, True)
    assert cfg.amqp.dtrs_timeout == 0.5


@pytest.mark.parametrize(
    ("amqp", "match"),
    [
        ({"store_retries": -1}, "store_retries"),
        ({"store_retries": 1.5}, "store_retries"),
        ({"store_retry_delay": 0}, "store_retry_delay"),
        ({"store_retry_delay": math.nan}, "store_retry_delay"),
        ({"store_retry_delay": 5, "store_retry_delay_max": 1}, "store_retry_delay_max"),
        ({"dead_letter": "yes"}, "dead_letter"),
        ({"dtrs_timeout": 0}, "dtrs_timeout"),
        ({"dtrs_timeout": -2}, "dtrs_timeout"),
    ],
)
def test_a_bad_retry_setting_is_a_config_error_naming_it(amqp, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"server": {"amqp": amqp}}, env={})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": True}, "retries"),
        ({"delay": 0}, "delay"),
        ({"delay": math.inf, "delay_max": math.inf}, "delay"),
        ({"delay": 2.0, "delay_max": 1.0}, "delay_max"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RetryPolicy(**kwargs)


def test_the_retry_queue_holds_for_its_delay_then_hands_back_to_the_service_queue():
    names = Names("sys")
    queue = retry_queue(names, "epum", 2000)
    assert queue.name == "sys.epum.retry.2000"
    assert queue.durable and not queue.auto_delete
    assert queue.queue_arguments == {
        "x-message-ttl": 2000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "sys.epum",
    }
    dead = dead_letter_queue(names, "epum")
    assert dead.name == "sys.epum.dead" and dead.durable and not dead.queue_arguments


@pytest.mark.parametrize(
    ("headers", "count"),
    [({}, 0), ({RETRIES_HEADER: 3}, 3), ({RETRIES_HEADER: "3"}, 0), ({RETRIES_HEADER: -1}, 0)],
)
def test_the_retry_count_is_read_from_its_header(headers, count):
    assert retries_so_far(headers) == count


def test_a_copy_leaves_the_brokers_dead_letter_history_behind():
    headers = {"sender": "a", "x-death": [{"count": 1}], RETRIES_HEADER: 1}
    assert copy_headers(headers, **{RETRIES_HEADER: 2}) == {"sender": "a", RETRIES_HEADER: 2}
    assert headers[RETRIES_HEADER] == 1  # the original is untouched


def test_a_long_reason_is_cut():
    assert short_reason("x" * 5000).endswith("...") and len(short_reason("x" * 5000)) == 1000
    assert short_reason("short") == "short"
