"""Canonical JSON encoding and strict JSON parsing.

Design notes
------------
*Encoding* is the `canonicaljson` library (the Matrix ecosystem's own, a thin
layer over the stdlib C encoder with ``sort_keys`` and compact separators).
Python's ``sort_keys`` orders by code point, which is what the spec asks for,
and the stdlib escapes exactly the characters the appendices grammar escapes
(``\\b \\t \\n \\f \\r \\" \\\\`` and ``\\u00XX`` for other control characters).
Encoding errors (NaN, unknown types, lone surrogates, absurd nesting) become
`InvalidJSON` so callers handling untrusted data catch one error type.

*Parsing* is stricter than ``json.loads``:

- the input must be valid UTF-8 (``json.loads`` would also guess UTF-16/32);
- duplicate object keys are rejected (two servers could otherwise read the
  same bytes as different events);
- ``NaN``/``Infinity`` and numbers that overflow a float are always rejected;
- lone UTF-16 surrogates written as escapes (``\\ud800`` to ``\\udfff``) are rejected, since they
  cannot be encoded back to UTF-8 and so can never be hashed or signed;
- with ``strict=True`` (room versions 6+, `RoomVersion.strict_canonical_json`)
  any number written with a fraction or exponent is rejected, and integers must
  lie in ``[-(2**53)+1, 2**53-1]``.

A note on the appendices example ``{"a": -0, "b": 1e10}``: it describes the
canonical form of a *value* (the integer ten billion), not what a server should
accept on the wire. Like Synapse, strict parsing rejects ``1e10`` because it is
written as a float; accepting events other servers drop would let rooms diverge.
In lenient mode it is kept as a Python float and encoded the way Synapse does, so
hashes of old (v1-v5) events that contain floats still match their senders'.

`check_json_value` applies the same rules to an already-parsed value, for PDUs
that arrive as dicts (inside a transaction body) or are built locally.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from canonicaljson import encode_canonical_json as _encode_canonical_json

from hearth.core.errors import InvalidJSON

MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAFE_INTEGER = -(2**53) + 1

_SURROGATE = re.compile("[\ud800-\udfff]")


def _not_json(value: object) -> Any:
    raise TypeError(f"value of type {type(value).__name__} is not JSON")


def _make_fast_encoder() -> Callable[[object, int], Sequence[str]] | None:
    """The stdlib's C encoder, configured like canonicaljson's, built once.

    `canonicaljson.encode_canonical_json` goes through ``JSONEncoder.encode``,
    which builds a fresh C encoder object on every call; for the small objects
    events are, that setup is about a third of the time (measured with
    bench/bench_core.py). Calling one long-lived C encoder directly gives the
    same bytes (checked here at import and by a property test), and we fall
    back to canonicaljson if this Python's private encoder API differs.
    """
    try:
        from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]

        if c_make_encoder is None or c_encode_basestring is None:
            return None
        # markers=None: no circular-reference tracking (a cycle ends in RecursionError).
        fast: Callable[[object, int], Sequence[str]] = c_make_encoder(
            None, _not_json, c_encode_basestring, None, ":", ",", True, False, False
        )
        sample = {"b": [1, -2, True, None, 1.5], "a": {"\u65e5": "\x00\n\u2028\"\\"}, "": ""}
        if "".join(fast(sample, 0)).encode("utf-8") != _encode_canonical_json(sample):
            return None
        return fast
    except Exception:  # any surprise in a private API means: use the library
        return None


_FAST_ENCODER = _make_fast_encoder()


def _make_orjson_encoder() -> Callable[[object], bytes] | None:
    """orjson, when installed, for values known to hold no floats.

    orjson writes the same bytes as the canonical encoder for every float-free
    JSON value (compact, keys sorted by code point, the same string escapes),
    about five times faster: 1.0 us against 5.1 us for a typical message event.
    That is the difference between signing at ~0.55 and ~0.7 of raw PyNaCl speed.
    Floats are the exception: orjson writes ``1e16`` where Python writes
    ``1e+16`` and writes NaN as ``null``, so it is only used for strict room
    versions (6+), whose events cannot hold floats. orjson also refuses integers
    outside 64 bits and nesting deeper than 255; those fall back to the stdlib.
    """
    try:
        import orjson
    except ImportError:
        return None
    option = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS \
        | orjson.OPT_PASSTHROUGH_DATETIME
    encode: Callable[[object], bytes] = functools.partial(orjson.dumps, default=_not_json, option=option)
    sample = {
        "b": [1, -2, True, None, 2**63 - 1],
        "a": {"\uffff": "\x00\n\u2028\"\\", "\U00010000": ""},
        "": "",
    }
    try:
        if encode(sample) != _encode_canonical_json(sample):
            return None
    except Exception:  # an unexpected orjson: keep to the reference encoder
        return None
    return encode


_ORJSON_ENCODER = _make_orjson_encoder()


def encode_canonical_json(value: object, *, float_free: bool = False) -> bytes:
    """The canonical UTF-8 encoding of ``value``; `InvalidJSON` if it has none.

    ``float_free`` promises ``value`` holds no floats (true of any event in a
    room version with `RoomVersion.strict_canonical_json`), which allows the
    faster encoder.
    """
    if float_free and _ORJSON_ENCODER is not None:
        try:
            return _ORJSON_ENCODER(value)
        except TypeError:
            pass  # huge ints, deep nesting, odd types: the reference encoder decides
    try:
        if _FAST_ENCODER is not None:
            return "".join(_FAST_ENCODER(value, 0)).encode("utf-8")
        return _encode_canonical_json(value)
    except (ValueError, TypeError, UnicodeError, RecursionError) as e:
        raise InvalidJSON(f"value cannot be encoded as canonical JSON: {e}") from e


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidJSON(f"duplicate key {key!r} in JSON object")
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise InvalidJSON(f"{name} is not allowed in JSON")


def _lenient_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJSON(f"number {text[:40]} is out of range")
    return value


def _strict_float(text: str) -> Any:
    raise InvalidJSON(f"non-integer number {text[:40]} is not allowed")


def _strict_int(text: str) -> int:
    # More than 17 characters ("-" plus 16 digits) is always out of range; checking
    # the length first also avoids int() on a pathological digit string.
    if len(text) > 17:
        raise InvalidJSON(f"integer {text[:40]} is out of the canonical JSON range")
    value = int(text)
    if value > MAX_SAFE_INTEGER or value < MIN_SAFE_INTEGER:
        raise InvalidJSON(f"integer {text} is out of the canonical JSON range")
    return value


_LENIENT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=_lenient_float,
)
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_reject_constant,
    parse_float=_strict_float,
    parse_int=_strict_int,
)


def parse_json(raw: bytes | bytearray | memoryview | str, *, strict: bool = False) -> Any:
    """Parse untrusted JSON text, raising `InvalidJSON` for anything unacceptable.

    ``strict`` selects the canonical-JSON number rules of room versions 6+.
    """
    try:
        data = bytes(raw) if not isinstance(raw, bytes | str) else raw
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if isinstance(raw, str):
            # A str may hold raw surrogates that no UTF-8 encoder accepts.
            text.encode("utf-8")
    except UnicodeError as e:
        raise InvalidJSON(f"JSON is not valid UTF-8: {e}") from e
    decoder = _STRICT_DECODER if strict else _LENIENT_DECODER
    try:
        value = decoder.decode(text)
    except InvalidJSON:
        raise
    except (ValueError, RecursionError) as e:
        raise InvalidJSON(f"malformed JSON: {e}") from e
    if ("\\ud" in text or "\\uD" in text) and _contains_surrogate(value):
        raise InvalidJSON("JSON contains a lone UTF-16 surrogate escape")
    return value


def _contains_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            for key, sub in item.items():
                if _SURROGATE.search(key):
                    return True
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)
    return False


def check_json_value(value: object, *, strict: bool) -> None:
    """Check an in-memory value obeys the rules `parse_json` enforces on text.

    Containers must be dicts with string keys and lists (tuples are tolerated as
    the encoder writes them as arrays); leaves must be str, int, bool, None or,
    when not ``strict``, finite floats. Raises `InvalidJSON`.
    """
    stack: list[Any] = [value]
    pop, push, extend = stack.pop, stack.append, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        # Exact-type checks first: they are the common case and much cheaper.
        if kind is str:
            if not item.isascii() and _SURROGATE.search(item):
                raise InvalidJSON("string contains a lone UTF-16 surrogate")
        elif kind is dict:
            for key, sub in item.items():
                if type(key) is not str:
                    raise InvalidJSON(f"object key {key!r} is not a string")
                if not key.isascii() and _SURROGATE.search(key):
                    raise InvalidJSON("object key contains a lone UTF-16 surrogate")
                push(sub)
        elif kind is list:
            extend(item)
        elif kind is int:
            if strict and (item > MAX_SAFE_INTEGER or item < MIN_SAFE_INTEGER):
                raise InvalidJSON(f"integer {item} is out of the canonical JSON range")
        elif kind is bool or item is None:
            continue
        else:
            _check_unusual(item, strict, push, extend)


def _check_unusual(
    item: object, strict: bool, push: Callable[[object], None], extend: Callable[[Any], None]
) -> None:
    """Subclasses of the JSON types, tuples and floats: the rare cases."""
    if isinstance(item, str):
        push(str(item))
    elif isinstance(item, bool):
        return
    elif isinstance(item, int):
        push(int(item))
    elif isinstance(item, dict):
        push(dict(item))
    elif isinstance(item, list | tuple):
        extend(item)
    elif isinstance(item, float):
        if strict:
            raise InvalidJSON(f"non-integer number {item!r} is not allowed")
        if not math.isfinite(item):
            raise InvalidJSON(f"number {item!r} is not allowed in JSON")
    else:
        raise InvalidJSON(f"value of type {type(item).__name__} is not JSON")
