"""The generic checks: short echoes, plain finite JSON within bounds, the wire edge's decode."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from epum.errors import BadRequestError
from epum.messaging.edge import REFUSED_COMPRESSION, GuardedConsumer, _raw_headers, decode_body
from epum.settings import LimitSettings, settings_from_dict
from epum.store.codec import MAX_VALUE_BYTES, dump
from epum.validation import (
    check_domain_size,
    check_json,
    check_size,
    encoded_size,
    json_safe,
    record_problem,
    short,
)

LIMITS = LimitSettings()


def test_short_cuts_a_long_value_and_says_how_long_it_was():
    text = short("x" * 1_000_000)
    assert len(text) < 120
    assert text.startswith("'xxxx")
    assert "chars" in text
    assert short("abc") == "'abc'"


def test_limits_are_settings_with_reasons_and_checks():
    assert settings_from_dict({"limits": {"max_depth": 7}}).limits.max_depth == 7
    with pytest.raises(ValueError, match="max_depth"):
        settings_from_dict({"limits": {"max_depth": 0}})
    built = settings_from_dict({"limits": {"max_dept": 7}})
    assert built.warnings == ("unknown key limits.max_dept ignored; did you mean max_depth?",)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (float("nan"), "finite"),
        ({"a": [1, float("inf")]}, "finite"),
        ("x" * (LIMITS.max_string_length + 1), "limits.max_string_length"),
        ({"k" * (LIMITS.max_name_length + 1): 1}, "limits.max_name_length"),
        ({1: 2}, "not a string"),
        ({"a": object()}, "not a JSON value"),
    ],
)
def test_check_json_names_what_is_wrong(value, words):
    with pytest.raises(BadRequestError, match=words):
        check_json(value, LIMITS, "value")


def test_check_json_refuses_deep_nesting_without_recursing():
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(BadRequestError, match=r"limits\.max_depth"):
        check_json(deep, LIMITS, "value")
    check_json([[[[1]]]], LIMITS, "value")  # shallow is fine


def message(body, content_type="application/json", headers=None):
    return SimpleNamespace(body=body, content_type=content_type, headers=headers or {})


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"op": "x", "args": {"v": NaN}}', "NaN"),
        ('{"op": "x", "args": {"v": -Infinity}}', "Infinity"),
        ('{"op": "x", "args": {"v": 1e400}}', "out of range"),
        ("[" * 100_000 + "]" * 100_000, "limits.max_depth"),
        ("[" * 600 + "]" * 600, "limits.max_depth"),
        ("{not json", "not valid JSON"),
        (json.dumps({"op": "x", "args": {"v": "y" * 300_000}}), "limits.max_message_bytes"),
    ],
)
def test_the_edge_refuses_bad_bodies_with_a_typed_error(body, words):
    with pytest.raises(BadRequestError, match=words) as caught:
        decode_body(message(body), LIMITS)
    assert len(str(caught.value)) < 300


def test_the_edge_refuses_other_content_types_and_compression():
    with pytest.raises(BadRequestError, match="content type"):
        decode_body(message(b"\x80\x03.", "application/x-python-serialize"), LIMITS)
    with pytest.raises(BadRequestError, match="compressed"):
        decode_body(message(b"{}", headers={REFUSED_COMPRESSION: "'bz2'"}), LIMITS)
    assert decode_body(message('{"op": "x"}'), LIMITS) == {"op": "x"}


def test_the_guarded_consumer_takes_the_compression_header_off_before_kombu_sees_it():
    raw = SimpleNamespace(properties={"application_headers": {"compression": "bz2", "a": 1}})
    headers = _raw_headers(raw)
    seen = []
    consumer = object.__new__(GuardedConsumer)  # no channel needed for this step
    consumer.accept = None
    consumer.on_message = seen.append
    consumer.on_decode_error = None
    consumer.channel = SimpleNamespace(message_to_python=lambda m: m)
    raw.errors = []
    consumer._receive_callback(raw)
    assert seen == [raw]
    assert "compression" not in headers
    assert headers[REFUSED_COMPRESSION] == "'bz2'"
    assert _raw_headers({"headers": {"x": 1}}) == {"x": 1}


def test_domain_sizes_are_bounded():
    check_domain_size({"preserve_n": 10_000}, LIMITS)
    for conf in (
        {"preserve_n": 1_000_000_000},
        {"maximum_vms": "20000"},
        {"clouds": [{"site_name": "s", "size": 10**6, "rank": 1}]},
    ):
        with pytest.raises(BadRequestError, match=r"limits\.max_instances_per_domain"):
            check_domain_size(conf, LIMITS)
    check_domain_size({"preserve_n": "lots"}, LIMITS)  # left to the engine's own check


def test_record_problems_name_the_field():
    record = {
        "instance_id": "i1",
        "launch_id": "l",
        "site": ["a"],
        "allocation": None,
        "state": "600-RUNNING",
        "state_time": 1.0,
        "health": "OK",
    }
    assert "site must be a string" in record_problem(record, LIMITS)
    assert "extravars must be a mapping" in record_problem(
        {**record, "site": "s", "extravars": "zzz"}, LIMITS
    )
    assert "finite" in record_problem({**record, "site": "s", "state_time": float("nan")}, LIMITS)
    assert record_problem({**record, "site": "s"}, LIMITS) is None


def test_json_safe_makes_stored_non_finite_numbers_describable():
    safe = json_safe({"a": [float("nan"), {"b": float("inf")}], "c": (1, "x")})
    assert json.dumps(safe, allow_nan=False)
    assert safe == {"a": ["nan", {"b": "inf"}], "c": [1, "x"]}


def test_the_store_codec_refuses_what_zookeeper_would_drop_the_session_for():
    with pytest.raises(BadRequestError, match=r"jute\.maxbuffer"):
        dump({"v": "x" * MAX_VALUE_BYTES})
    assert dump({"v": 1}) == b'{"v":1}'


def _worst_case_values() -> list:
    """Values whose compact JSON is as long as their size allows: escapes, big ints,
    long floats, deep and wide nesting."""
    astral, control, quote = "\U0001f600", "\x01", '"'
    return [
        {},
        [],
        "",
        {"k": astral * 50},
        [control * 30, quote * 30, "\\" * 30, "é" * 30],
        [-1.2345678901234567e-308, 1.7976931348623157e308, -0.0, 5e-324],
        [10**300, -(10**300), 2**64, -1, 0, True, False, None],
        {astral * 5: {control * 5: [quote * 5, {"": None}]}},
        [[[[[[1.0000000000000002e-100]]]]]],
        {f"k{i}": [i, -float(i) / 7, str(i) * i] for i in range(60)},
    ]


@pytest.mark.parametrize("value", _worst_case_values())
def test_check_json_bounds_the_compact_encoding_from_above(value):
    bound = check_json(value, LIMITS, "value")
    assert bound is not None and bound >= encoded_size(value)


def test_check_json_cannot_bound_what_is_not_plain_and_check_size_then_encodes():
    class Text(str):
        pass

    value = {"k": Text("x" * 100)}
    assert check_json(value, LIMITS, "value") is None
    with pytest.raises(BadRequestError, match="max_record_bytes"):
        check_size(value, 50, "max_record_bytes", "report", None)


def test_a_bound_over_the_limit_is_checked_by_encoding():
    value = {"k": "x" * 100}  # 108 bytes, its bound far more
    bound = check_json(value, LIMITS, "value")
    assert bound > 200
    check_size(value, 200, "max_record_bytes", "report", bound)  # fits: no error
    with pytest.raises(BadRequestError, match=r"108 bytes, over limits.max_record_bytes \(100\)"):
        check_size(value, 100, "max_record_bytes", "report", bound)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_the_bound_holds_for_any_json(value):
    bound = check_json(value, LIMITS, "value")
    assert bound is not None and bound >= encoded_size(value)
