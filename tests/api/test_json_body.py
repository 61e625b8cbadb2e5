"""`dump_json`, the encoder of every JSON response: orjson where it can, the
standard encoder where orjson refuses, the same JSON value either way."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hearth.api.errors import dump_json, json_response

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_json_values)
def test_round_trips_any_json_value(value: Any) -> None:
    assert json.loads(dump_json(value)) == value


class Membership(StrEnum):
    JOIN = "join"


@pytest.mark.parametrize(("value", "expected"), [
    ({"user_id": "@a:b", "n": 1}, b'{"user_id":"@a:b","n":1}'),
    ({"caf\u00e9": "\u2603 </script>"}, '{"caf\u00e9":"\u2603 </script>"}'.encode()),
    ({"big": 2**70}, b'{"big":1180591620717411303424}'),  # beyond orjson's 64 bits
    ({1: "int key"}, b'{"1":"int key"}'),  # orjson wants str keys; json converts
    ({"m": Membership.JOIN}, b'{"m":"join"}'),  # a str subclass, as json writes it
])
def test_bytes(value: Any, expected: bytes) -> None:
    assert dump_json(value) == expected


def test_non_json_values_still_fail() -> None:
    # A handler returning something that is not JSON is a bug (a logged 500),
    # not something to serialise quietly.
    @dataclass
    class Thing:
        x: int

    with pytest.raises(TypeError):
        dump_json({"thing": Thing(1)})
    with pytest.raises(UnicodeEncodeError):
        dump_json({"lone surrogate": "\ud800"})


def test_json_response_headers() -> None:
    resp = json_response({"a": 1}, status=201, headers={"Retry-After": "1"})
    assert resp.status == 201 and resp.body == b'{"a":1}'
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Retry-After"] == "1"
