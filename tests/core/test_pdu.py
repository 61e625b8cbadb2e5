"""PDU parsing and building: formats per room version, limits, and fuzzing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signedjson.key import generate_signing_key, get_verify_key

from hearth.core.canonical_json import encode_canonical_json
from hearth.core.crypto import (
    VerifyKeyWithValidity,
    check_content_hash,
    compute_event_id,
    verify_event_signatures,
)
from hearth.core.errors import EventTooLarge, InvalidPDU
from hearth.core.events import Event
from hearth.core.ids import is_valid_event_id
from hearth.core.pdu import MAX_PDU_BYTES, build_event, check_pdu_format, parse_pdu
from hearth.core.room_versions import (
    KNOWN_ROOM_VERSIONS,
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V10,
    V11,
    V12,
    EventFormat,
    RoomVersion,
)

KEY = generate_signing_key("k1")
SERVER = "hs.example.org"
ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
V4_ID = "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"
V3_ID = "$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW+/"
V12_ROOM = "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"


def lookup(server: str, key_id: str) -> VerifyKeyWithValidity | None:
    if (server, key_id) == (SERVER, "ed25519:k1"):
        return VerifyKeyWithValidity(get_verify_key(KEY), 2**62)
    return None


def ref(rv: RoomVersion, n: int = 0) -> Any:
    """A syntactically valid reference to another event in this room version."""
    if rv.event_format is EventFormat.V1:
        return [f"$prev{n}:{SERVER}", {"sha256": "abc"}]
    return V3_ID if rv.event_format is EventFormat.V3 else V4_ID


def fields(rv: RoomVersion, **overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "m.room.message",
        "room_id": V12_ROOM if rv.room_id_from_create_event else f"!room:{SERVER}",
        "sender": f"@alice:{SERVER}",
        "content": {"body": "hello", "msgtype": "m.text"},
        "origin_server_ts": 1_700_000_000_000,
        "depth": 7,
        "prev_events": [ref(rv)],
        "auth_events": [ref(rv, 1)],
    }
    out.update(overrides)
    return out


def built(rv: RoomVersion, **overrides: Any) -> dict[str, Any]:
    return dict(build_event(fields(rv, **overrides), rv, SERVER, KEY).pdu)


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("rv", ALL_VERSIONS, ids=lambda rv: f"v{rv.identifier}")
def test_build_then_parse(rv: RoomVersion) -> None:
    event = build_event(fields(rv, unsigned={"age": 5}), rv, SERVER, KEY)
    assert isinstance(event, Event) and event.room_version is rv
    assert is_valid_event_id(event.event_id, rv)
    assert event.event_id == compute_event_id(event.pdu, rv)
    assert check_content_hash(event.pdu)
    verify_event_signatures(event, rv, lookup)
    raw = encode_canonical_json(dict(event.pdu))
    from_bytes = parse_pdu(raw, rv)
    from_dict = parse_pdu(json.loads(raw), rv)
    assert from_bytes.event_id == from_dict.event_id == event.event_id
    assert from_bytes.pdu == event.pdu
    # Pretty-printed bytes are the same event.
    assert parse_pdu(json.dumps(dict(event.pdu), indent=3).encode(), rv).event_id == event.event_id
    if rv.event_format is EventFormat.V1:
        assert event.event_id.endswith(":" + SERVER) and event.pdu["event_id"] == event.event_id
    else:
        assert "event_id" not in event.pdu


def test_build_event_details() -> None:
    given = fields(V1, event_id=f"$mine:{SERVER}", hashes={"sha256": "stale"}, signatures={"x": {}})
    event = build_event(given, V1, SERVER, KEY)
    assert event.event_id == f"$mine:{SERVER}"
    assert set(event.pdu["signatures"]) == {SERVER}
    assert check_content_hash(event.pdu)
    assert "hashes" in given and given["hashes"] == {"sha256": "stale"}  # input untouched
    # unsigned is outside both the hash and the signature.
    e1 = build_event(fields(V6), V6, SERVER, KEY)
    e2 = build_event(fields(V6, unsigned={"x": 1}), V6, SERVER, KEY)
    assert e1.pdu["hashes"] == e2.pdu["hashes"] and e1.event_id == e2.event_id


@pytest.mark.parametrize(
    ("rv", "bad"),
    [
        (V6, {"content": {"n": 1.5}}),
        (V6, {"content": {"n": 2**53}}),
        (V6, {"depth": -1}),
        (V5, {"sender": "alice"}),
        (V4, {"prev_events": [V3_ID]}),
        (V1, {"type": None}),
        (V12, {"room_id": "!old:example.org"}),
    ],
)
def test_build_event_rejects_invalid_fields(rv: RoomVersion, bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidPDU):
        build_event(fields(rv, **bad), rv, SERVER, KEY)


def test_build_event_allows_floats_before_v6() -> None:
    event = build_event(fields(V5, content={"n": 1.5}), V5, SERVER, KEY)
    assert parse_pdu(encode_canonical_json(dict(event.pdu)), V5).event_id == event.event_id


def test_v12_create_event_has_no_room_id() -> None:
    create_fields = fields(V12, type="m.room.create", state_key="", content={"room_version": "12"},
                           prev_events=[], auth_events=[], depth=1)
    del create_fields["room_id"]
    event = build_event(create_fields, V12, SERVER, KEY)
    assert "room_id" not in event.pdu
    assert event.room_id == "!" + event.event_id[1:]
    parsed = parse_pdu(encode_canonical_json(dict(event.pdu)), V12)
    assert parsed.room_id == event.room_id
    # Events in the room use that ID.
    msg = build_event(fields(V12, room_id=event.room_id, auth_events=[]), V12, SERVER, KEY)
    assert parse_pdu(dict(msg.pdu), V12).room_id == event.room_id
    # Only v12 create events may omit it.
    with pytest.raises(InvalidPDU, match="room_id"):
        build_event({k: v for k, v in fields(V12).items() if k != "room_id"}, V12, SERVER, KEY)
    v11_create = {**create_fields, "content": {}}
    with pytest.raises(InvalidPDU, match="room_id"):
        build_event(v11_create, V11, SERVER, KEY)
    # A v12 create *with* a room_id is well-formed; auth rule 1.2 rejects it.
    assert parse_pdu({**dict(event.pdu), "room_id": V12_ROOM}, V12).room_id == V12_ROOM


# --- the size limit -------------------------------------------------------------------


@pytest.mark.parametrize("rv", [V5, V6, V12], ids=lambda rv: f"v{rv.identifier}")
def test_size_limit_boundary(rv: RoomVersion) -> None:
    small = built(rv, content={"body": ""})
    overhead = len(encode_canonical_json(small))
    exact = build_event(fields(rv, content={"body": "x" * (MAX_PDU_BYTES - overhead)}), rv, SERVER, KEY)
    exact_bytes = encode_canonical_json(dict(exact.pdu))
    assert len(exact_bytes) == MAX_PDU_BYTES
    assert parse_pdu(exact_bytes, rv).event_id == exact.event_id
    assert parse_pdu(json.loads(exact_bytes), rv).event_id == exact.event_id
    with pytest.raises(EventTooLarge):
        build_event(fields(rv, content={"body": "x" * (MAX_PDU_BYTES - overhead + 1)}), rv, SERVER, KEY)
    too_big = {**dict(exact.pdu), "content": {"body": "x" * (MAX_PDU_BYTES - overhead + 1)}}
    with pytest.raises(EventTooLarge):
        parse_pdu(encode_canonical_json(too_big), rv)
    with pytest.raises(EventTooLarge):
        parse_pdu(too_big, rv)
    # Whitespace on the wire does not count: the limit is on canonical JSON.
    padded = json.dumps(dict(exact.pdu), indent=8).encode()
    assert len(padded) > MAX_PDU_BYTES
    assert parse_pdu(padded, rv).event_id == exact.event_id


def test_size_counts_unsigned_and_multibyte_characters() -> None:
    small = built(V6, content={"body": ""})
    overhead = len(encode_canonical_json(small))
    room = MAX_PDU_BYTES - overhead
    with pytest.raises(EventTooLarge):
        build_event(fields(V6, content={"body": "é" * (room // 2 + 1)}), V6, SERVER, KEY)
    build_event(fields(V6, content={"body": "é" * (room // 2)}), V6, SERVER, KEY)
    with pytest.raises(EventTooLarge):
        build_event(fields(V6, content={"body": ""}, unsigned={"a": "x" * room}), V6, SERVER, KEY)


# --- rejections -----------------------------------------------------------------------

REQUIRED = ["type", "sender", "content", "origin_server_ts", "depth", "hashes", "signatures",
            "prev_events", "auth_events", "room_id"]


@pytest.mark.parametrize("rv", ALL_VERSIONS, ids=lambda rv: f"v{rv.identifier}")
def test_required_keys(rv: RoomVersion) -> None:
    pdu = built(rv)
    required = REQUIRED + (["event_id"] if rv.event_format is EventFormat.V1 else [])
    for key in required:
        with pytest.raises(InvalidPDU, match=key):
            parse_pdu({k: v for k, v in pdu.items() if k != key}, rv)
    for key in ("state_key", "unsigned", "redacts", "origin", "anything_else"):
        pdu.pop(key, None)
    parse_pdu(pdu, rv)


Mutation = Callable[[dict[str, Any]], None]

TYPE_ERRORS: list[tuple[str, Any]] = [
    ("type", 5), ("type", "t" * 256), ("type", "é" * 128),
    ("sender", 5), ("sender", "alice"), ("sender", "@alice"), ("sender", "@alice:bad_server"),
    ("state_key", 5), ("state_key", None), ("state_key", "s" * 256),
    ("content", []), ("content", "x"), ("content", None),
    ("origin_server_ts", "1"), ("origin_server_ts", True), ("origin_server_ts", None),
    ("depth", "7"), ("depth", True), ("depth", -1), ("depth", None),
    ("hashes", {}), ("hashes", {"sha256": 5}), ("hashes", "x"),
    ("signatures", []), ("signatures", {"s": "x"}), ("signatures", {"s": {"k": 5}}),
    ("unsigned", []), ("unsigned", None),
    ("room_id", 5), ("room_id", "room"), ("room_id", "!" + "r" * 250 + ":a.org"),
    ("prev_events", {}), ("prev_events", "x"), ("prev_events", [5]), ("prev_events", [None]),
    ("auth_events", [[]]),
]


@pytest.mark.parametrize(("key", "value"), TYPE_ERRORS)
@pytest.mark.parametrize("rv", [V1, V3, V6, V11, V12], ids=lambda rv: f"v{rv.identifier}")
def test_wrong_types(rv: RoomVersion, key: str, value: Any) -> None:
    pdu = built(rv)
    pdu[key] = value
    with pytest.raises(InvalidPDU):
        parse_pdu(pdu, rv)
    with pytest.raises(InvalidPDU):
        parse_pdu(json.dumps(pdu).encode(), rv)


def test_depth_limits() -> None:
    assert parse_pdu(built(V5, depth=2**63 - 1), V5).depth == 2**63 - 1
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V5, depth=2**63 - 1) | {"depth": 2**63}, V5)
    assert parse_pdu(built(V6, depth=2**53 - 1), V6).depth == 2**53 - 1
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V6, depth=2**53 - 1) | {"depth": 2**53}, V6)
    assert parse_pdu(built(V6, depth=0), V6).depth == 0


@pytest.mark.parametrize("rv", ALL_VERSIONS, ids=lambda rv: f"v{rv.identifier}")
def test_reference_limits(rv: RoomVersion) -> None:
    assert parse_pdu(built(rv, prev_events=[ref(rv, n) for n in range(20)]), rv)
    assert parse_pdu(built(rv, auth_events=[ref(rv, n) for n in range(10)]), rv)
    with pytest.raises(InvalidPDU, match="prev_events"):
        parse_pdu(built(rv) | {"prev_events": [ref(rv, n) for n in range(21)]}, rv)
    with pytest.raises(InvalidPDU, match="auth_events"):
        parse_pdu(built(rv) | {"auth_events": [ref(rv, n) for n in range(11)]}, rv)


@pytest.mark.parametrize(
    ("rv", "bad_ref"),
    [
        (V1, V4_ID),
        (V1, ["$a:b.org"]),
        (V1, ["$a:b.org", {"sha256": "x"}, 3]),
        (V2, ["$a:b.org", {}]),
        (V2, ["$a:b.org", "hash"]),
        (V2, ["nope", {"sha256": "x"}]),
        (V3, "$a:b.org"),
        (V3, ["$a:b.org", {"sha256": "x"}]),
        (V3, V4_ID),
        (V4, V3_ID),
        (V10, "$short"),
        (V12, "$" + "A" * 44),
    ],
)
def test_reference_formats(rv: RoomVersion, bad_ref: Any) -> None:
    with pytest.raises(InvalidPDU):
        parse_pdu(built(rv) | {"prev_events": [bad_ref]}, rv)
    with pytest.raises(InvalidPDU):
        parse_pdu(built(rv) | {"auth_events": [bad_ref]}, rv)


def test_event_id_key_per_version() -> None:
    with pytest.raises(InvalidPDU, match="event_id"):
        parse_pdu(built(V1) | {"event_id": V4_ID}, V1)
    with pytest.raises(InvalidPDU, match="event_id"):
        parse_pdu(built(V2) | {"event_id": 5}, V2)
    # v3+: a stray event_id is covered by the reference hash, never trusted.
    pdu = built(V4)
    stray = parse_pdu(pdu | {"event_id": "$whatever:x.org"}, V4)
    assert stray.event_id != parse_pdu(pdu, V4).event_id


def test_room_id_form_per_version() -> None:
    with pytest.raises(InvalidPDU, match="room_id"):
        parse_pdu(built(V11) | {"room_id": V12_ROOM}, V11)
    with pytest.raises(InvalidPDU, match="room_id"):
        parse_pdu(built(V12) | {"room_id": "!r:example.org"}, V12)


def test_redacts_type() -> None:
    with pytest.raises(InvalidPDU, match="redacts"):
        parse_pdu(built(V10, type="m.room.redaction") | {"redacts": 5}, V10)
    # From v11 `redacts` lives in content; a top-level one is just an extra key.
    parse_pdu(built(V11, type="m.room.redaction") | {"redacts": 5}, V11)


def test_historical_sender_is_accepted() -> None:
    assert parse_pdu(built(V10, sender="@Old User:example.org"), V10).sender == "@Old User:example.org"


@pytest.mark.parametrize(
    ("raw", "strict_only"),
    [
        (b'{"type": "a", "type": "b"}', False),
        (b"\xff", False),
        (b"[]", False),
        (b'"x"', False),
        (b"", False),
        (b'{"depth": NaN}', False),
        (b'{"content": {"a": 1.5}}', True),
        (b'{"content": {"a": 9007199254740992}}', True),
    ],
)
def test_json_level_rejections(raw: bytes, strict_only: bool) -> None:
    with pytest.raises(InvalidPDU):
        parse_pdu(raw, V6)
    if not strict_only:
        with pytest.raises(InvalidPDU):
            parse_pdu(raw, V5)


def test_strict_json_applies_to_dict_input_too() -> None:
    pdu = built(V5, content={"n": 1.5})
    assert parse_pdu(pdu, V5)
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V6) | {"content": {"n": 1.5}}, V6)
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V6) | {"content": {"n": 2**53}}, V6)
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V5) | {"content": {"n": float("nan")}}, V5)
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V5) | {"content": {"n": object()}}, V5)
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V5) | {"content": {"\ud800": 1}}, V5)


def test_deep_nesting_is_invalid_not_a_crash() -> None:
    deep: Any = []
    for _ in range(50_000):
        deep = [deep]
    with pytest.raises(InvalidPDU):
        parse_pdu(built(V6) | {"content": {"x": deep}}, V6)
    nested = b"[" * 50_000 + b"]" * 50_000
    raw = encode_canonical_json(built(V6)).replace(b'"content":{', b'"content":{"x":' + nested + b",", 1)
    with pytest.raises(InvalidPDU):
        parse_pdu(raw, V6)


def test_bad_input_types() -> None:
    for bad in (None, 5, "a string", [1, 2]):
        with pytest.raises(InvalidPDU):
            parse_pdu(bad, V6)  # type: ignore[arg-type]


def test_check_pdu_format_without_crypto() -> None:
    pdu = fields(V6)
    check_pdu_format(pdu, V6, with_crypto=False)
    with pytest.raises(InvalidPDU, match="hashes"):
        check_pdu_format(pdu, V6)


# --- fuzzing: parse_pdu raises InvalidPDU and nothing else ---------------------------

_ids = st.sampled_from([V4_ID, V3_ID, "@a:b.org", "!r:b.org", "$e:b.org", V12_ROOM])
_leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
         | st.text(max_size=12) | _ids)
_json_values = st.recursive(
    _leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8,
)
_SEEDS = {rv.identifier: built(rv, state_key="") for rv in ALL_VERSIONS}


def _parse_or_invalid(raw: Any, rv: RoomVersion) -> None:
    try:
        event = parse_pdu(raw, rv)
    except InvalidPDU:
        return
    assert isinstance(event, Event)
    assert is_valid_event_id(event.event_id, rv)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ALL_VERSIONS), st.binary(max_size=200))
def test_fuzz_bytes(rv: RoomVersion, raw: bytes) -> None:
    _parse_or_invalid(raw, rv)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(ALL_VERSIONS),
    st.lists(st.tuples(st.sampled_from([*REQUIRED, "event_id", "state_key", "unsigned", "redacts"]),
                       st.none() | _json_values), max_size=4),
    st.booleans(),
)
def test_fuzz_mutated_pdus(rv: RoomVersion, edits: list[tuple[str, Any]], as_bytes: bool) -> None:
    pdu = dict(_SEEDS[rv.identifier])
    for key, value in edits:
        if value is None:
            pdu.pop(key, None)
        else:
            pdu[key] = value
    if as_bytes:
        try:
            raw = json.dumps(pdu, allow_nan=True).encode()
        except (ValueError, UnicodeError):
            return
        _parse_or_invalid(raw, rv)
    else:
        _parse_or_invalid(pdu, rv)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL_VERSIONS), st.binary(min_size=1, max_size=8), st.integers(min_value=0))
def test_fuzz_corrupted_bytes(rv: RoomVersion, junk: bytes, position: int) -> None:
    raw = encode_canonical_json(_SEEDS[rv.identifier])
    at = position % len(raw)
    _parse_or_invalid(raw[:at] + junk + raw[at + len(junk):], rv)
