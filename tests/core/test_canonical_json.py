"""Canonical JSON: the appendices examples, strict parsing rules, and round trips."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import canonicaljson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.core.canonical_json import (
    MAX_SAFE_INTEGER,
    MIN_SAFE_INTEGER,
    check_json_value,
    encode_canonical_json,
    parse_json,
)
from hearth.core.errors import InvalidJSON

# (input JSON text, expected canonical JSON) from appendices "Canonical JSON / Examples".
SPEC_EXAMPLES = [
    ("{}", "{}"),
    ('{\n    "one": 1,\n    "two": "Two"\n}', '{"one":1,"two":"Two"}'),
    ('{\n    "b": "2",\n    "a": "1"\n}', '{"a":"1","b":"2"}'),
    ('{"b":"2","a":"1"}', '{"a":"1","b":"2"}'),
    (
        """{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {"medium": "email", "address": "john.doe@example.org"},
                {"medium": "msisdn", "address": "123456789"}
            ]
        }
    }
}""",
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":'
        '[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},'
        '"success":true}}',
    ),
    ('{\n    "a": "日本語"\n}', '{"a":"日本語"}'),
    ('{\n    "本": 2,\n    "日": 1\n}', '{"日":1,"本":2}'),
    ('{\n    "a": "\\u65E5"\n}', '{"a":"日"}'),
    ('{\n    "a": null\n}', '{"a":null}'),
]


@pytest.mark.parametrize(("given_json", "expected"), SPEC_EXAMPLES)
@pytest.mark.parametrize("strict", [False, True])
def test_spec_examples(given_json: str, expected: str, strict: bool) -> None:
    value = parse_json(given_json.encode("utf-8"), strict=strict)
    assert encode_canonical_json(value) == expected.encode("utf-8")


def test_spec_example_negative_zero_and_exponent_as_values() -> None:
    # The last appendices example describes values: -0 is the integer 0 and 1e10
    # is the integer ten billion.
    assert encode_canonical_json({"a": -0, "b": 10**10}) == b'{"a":0,"b":10000000000}'
    assert parse_json(b"-0", strict=True) == 0


def test_strict_rejects_numbers_written_as_floats() -> None:
    # On the wire, strict parsing (v6+) rejects 1e10 as Synapse does.
    with pytest.raises(InvalidJSON):
        parse_json(b'{"a": -0, "b": 1e10}', strict=True)
    assert parse_json(b'{"a": -0, "b": 1e10}') == {"a": 0, "b": 1e10}


def test_control_characters_use_the_grammar_escapes() -> None:
    value = "\x00\x07\x08\t\n\x0b\x0c\r\x1b\x1f \"\\/\x7f\u2028"
    assert encode_canonical_json(value) == (
        b'"\\u0000\\u0007\\b\\t\\n\\u000b\\f\\r\\u001b\\u001f \\"\\\\/\x7f\xe2\x80\xa8"'
    )


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "a": 2}',
        b'{"x": {"a": 1, "a": 1}}',
        b"\xff{}",
        b'{"a": "\xc3"}',
        b'{"a": "\xed\xa0\x80"}',  # an encoded surrogate (CESU-8) is not UTF-8
        b'"\\ud800"',
        b'{"\\udfff": 1}',
        b"NaN",
        b"[Infinity]",
        b"[-Infinity]",
        b"[1e400]",
        b"{} {}",
        b"",
        b"\xef\xbb\xbf{}",
        b"{'a': 1}",
        b"[1,]",
        b"01",
        b"[" * 100_000,
    ],
)
@pytest.mark.parametrize("strict", [False, True])
def test_parse_rejects(raw: bytes, strict: bool) -> None:
    with pytest.raises(InvalidJSON):
        parse_json(raw, strict=strict)


@pytest.mark.parametrize(
    "raw",
    [b"1.5", b"[1.0]", b"1e3", b"-0.0", b"9007199254740992", b"-9007199254740992", b"1" * 5000],
)
def test_strict_number_rules(raw: bytes) -> None:
    with pytest.raises(InvalidJSON):
        parse_json(raw, strict=True)


def test_integer_bounds_are_inclusive() -> None:
    assert parse_json(b"[9007199254740991, -9007199254740991]", strict=True) == [
        MAX_SAFE_INTEGER,
        MIN_SAFE_INTEGER,
    ]
    # Lenient (v1-v5) keeps big integers exactly.
    assert parse_json(b"[9223372036854775807]") == [2**63 - 1]


def test_parse_accepts_str_and_surrogate_pairs() -> None:
    assert parse_json('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
    assert parse_json(bytearray(b" [ true , null ] ")) == [True, None]
    assert parse_json(b'"\\\\ud800"') == "\\ud800"  # an escaped backslash, not a surrogate
    with pytest.raises(InvalidJSON):
        parse_json("\ud800")


def test_encode_errors_are_invalid_json() -> None:
    for bad in (float("nan"), {"a": object()}, "\udc00", {1j: 1}):
        with pytest.raises(InvalidJSON):
            encode_canonical_json(bad)


@pytest.mark.parametrize(
    ("value", "strict"),
    [
        ({"a": 1.5}, True),
        ({"a": float("inf")}, False),
        ({"a": 2**53}, True),
        ({1: "a"}, False),
        ({"a": {"b"}}, False),
        (["\ud800"], False),
        ({"\udc00": 1}, False),
        (b"bytes", False),
    ],
)
def test_check_json_value_rejects(value: Any, strict: bool) -> None:
    with pytest.raises(InvalidJSON):
        check_json_value(value, strict=strict)


def test_check_json_value_accepts() -> None:
    check_json_value({"a": [1, True, None, "x", {"b": -(2**53) + 1}], "f": 1.5}, strict=False)
    check_json_value({"a": (1, 2), "é": "日本"}, strict=True)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=MIN_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_round_trip(value: Any) -> None:
    encoded = encode_canonical_json(value)
    assert parse_json(encoded, strict=True) == value
    # Any formatting of the same value parses back to the same canonical bytes.
    pretty = json.dumps(value, indent=2, ensure_ascii=True).encode()
    assert encode_canonical_json(parse_json(pretty, strict=True)) == encoded
    check_json_value(value, strict=True)


float_free_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(float_free_values)
def test_fast_encoders_match_the_reference(value: Any) -> None:
    # Both the long-lived C encoder and (for float-free values) orjson must give
    # exactly what the canonicaljson library gives.
    reference = canonicaljson.encode_canonical_json(value)
    assert encode_canonical_json(value) == reference
    assert encode_canonical_json(value, float_free=True) == reference


def test_fast_encoder_edge_cases() -> None:
    for value in (
        {"\uffff": 1, "\U00010000": 2, "é": 3, "a": 4},  # code point order, not UTF-16 order
        [2**64, -(2**64)],  # beyond orjson's integers
        "\x00\x1f\x7f\u2028\u2029\ud7ff\ue000",
        [True, False, None, 0, -0],
    ):
        reference = canonicaljson.encode_canonical_json(value)
        assert encode_canonical_json(value) == reference
        assert encode_canonical_json(value, float_free=True) == reference
    deep: Any = 1
    for _ in range(300):  # deeper than orjson allows
        deep = [deep]
    assert encode_canonical_json(deep, float_free=True) == canonicaljson.encode_canonical_json(deep)
    for bad in ("\ud800", {"a": object()}, {1: 2, "b": 3}):
        with pytest.raises(InvalidJSON):
            encode_canonical_json(bad, float_free=True)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=40))
def test_parse_arbitrary_bytes_only_raises_invalid_json(raw: bytes) -> None:
    for strict in (False, True):
        with contextlib.suppress(InvalidJSON):
            parse_json(raw, strict=strict)
