"""Strict PDU parsing and validation, and building locally created events.

Design notes
------------
`parse_pdu` is step 1 of the "checks performed on receipt of a PDU": is this a
valid event for its room version? It turns untrusted input (the bytes of a
request body, or one PDU dict out of a parsed transaction) into an `Event`, or
raises `InvalidPDU` with a reason; never any other exception, so the federation
layer can drop a bad PDU without a blanket ``except``. Signatures, the content
hash and auth rules are later steps (`crypto.verify_event_signatures`,
`crypto.check_content_hash`, the auth module).

What is checked, from the PDU schemas (data/api/server-server/definitions/
pdu_v1/v3/v4/v6/v11/v12.yaml) and the size limits of the client-server spec:

- JSON: UTF-8, no duplicate keys, no NaN/Infinity; from v6 no floats and
  integers within +-(2**53-1) (`canonical_json`). Dict input gets the same value
  checks via `check_json_value`.
- required keys and their types: ``type``, ``sender``, ``content``,
  ``origin_server_ts``, ``depth``, ``hashes`` (with a string ``sha256``),
  ``signatures`` (server -> key ID -> string), ``prev_events``, ``auth_events``;
  ``room_id`` except on a v12 ``m.room.create``; ``event_id`` in v1/v2;
  ``state_key``, ``unsigned`` and (before v11) ``redacts`` typed when present.
  Booleans never pass as integers.
- identifiers: ``sender`` is a user ID in the historical grammar; ``room_id``,
  ``event_id`` and every referenced event ID use the room version's form.
- shapes: v1/v2 references are ``[event_id, {"sha256": hash}]`` pairs, v3+ plain
  IDs; at most 20 ``prev_events`` and 10 ``auth_events``; ``0 <= depth <=``
  2**63-1 (2**53-1 from v6).
- sizes: ``sender``, ``room_id``, ``event_id``, ``type`` and ``state_key`` at
  most 255 bytes; the whole PDU, as canonical JSON with signatures, at most
  65536 bytes (`EventTooLarge`).

A ``room_id`` on a v12 create event is *not* a format error: auth rule 1.2
rejects it, which keeps "dropped" and "rejected" distinct as the spec has them.
An ``event_id`` key on a v3+ PDU is tolerated (the schema allows extra keys);
it is covered by the hashes like any other key and the real ID is computed.

For strict room versions the canonical encoding is never longer than the wire
bytes (no floats, no whitespace, no exponent forms), so a body of at most 64 KiB
skips the extra encode for the size check.

`build_event` is the room server's one way to mint an event: it validates the
fields, adds the content hash, signs, and reuses the signed bytes for the
reference hash, so an event costs two canonical encodes and one signature.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeGuard

from signedjson.types import SigningKey

from hearth.core.canonical_json import (
    MAX_SAFE_INTEGER,
    MIN_SAFE_INTEGER,
    check_json_value,
    encode_canonical_json,
    parse_json,
)
from hearth.core.crypto import (
    compute_event_id,
    encode_base64,
    event_id_from_reference_hash,
    key_id_of,
    redacted_signing_bytes,
)
from hearth.core.errors import CoreError, EventTooLarge, InvalidIdentifier, InvalidPDU
from hearth.core.events import Event
from hearth.core.ids import (
    HASH_EVENT_ID_PATTERNS,
    MAX_ID_BYTES,
    is_valid_event_id,
    is_valid_room_id,
    is_valid_user_id,
    parse_event_id,
    parse_room_id,
    parse_user_id,
    within_id_limit,
)
from hearth.core.room_versions import EventFormat, RoomVersion

MAX_PDU_BYTES = 65536
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10
MAX_DEPTH_V1 = 2**63 - 1
MAX_DEPTH_V6 = MAX_SAFE_INTEGER
_ED25519_SIG_B64 = 86  # 64 bytes in unpadded base64

_OPAQUE_ALPHABET = string.ascii_letters + string.digits
# Keys whose values `check_pdu_format` checks completely (scalars of known type),
# so the JSON value walk can skip them; v3+ reference lists are all strings too.
_FULLY_CHECKED = frozenset(
    {"type", "sender", "state_key", "origin_server_ts", "depth", "room_id", "event_id"}
)
_FULLY_CHECKED_V3 = _FULLY_CHECKED | {"prev_events", "auth_events"}


def parse_pdu(raw: bytes | bytearray | memoryview | Mapping[str, Any], room_version: RoomVersion) -> Event:
    """Validate a PDU for ``room_version`` and wrap it with its computed event ID.

    A dict is taken over as the event's PDU (not copied): do not mutate it later.
    Raises `InvalidPDU` (or its subclass `EventTooLarge`) and nothing else.
    """
    strict = room_version.strict_canonical_json
    try:
        if isinstance(raw, bytes | bytearray | memoryview):
            pdu = parse_json(raw, strict=strict)
            size_checked = strict and len(raw) <= MAX_PDU_BYTES
        elif isinstance(raw, Mapping):
            pdu = raw if isinstance(raw, dict) else dict(raw)
            size_checked = False
        else:
            raise InvalidPDU(f"a PDU must be bytes or a dict, not {type(raw).__name__}")
        if not isinstance(pdu, dict):
            raise InvalidPDU("a PDU must be a JSON object")
        check_pdu_format(pdu, room_version)
        if not isinstance(raw, bytes | bytearray | memoryview):
            _check_values(pdu, room_version)
        if not size_checked:
            size = len(encode_canonical_json(pdu, float_free=strict))
            if size > MAX_PDU_BYTES:
                raise EventTooLarge(f"PDU is {size} bytes of canonical JSON, over {MAX_PDU_BYTES}")
        event_id = compute_event_id(pdu, room_version)
    except InvalidPDU:
        raise
    except CoreError as e:
        raise InvalidPDU(e.reason) from e
    return Event(pdu, event_id, room_version)


def _fail(reason: str) -> NoReturn:
    raise InvalidPDU(reason)


def _why(parse: Callable[..., object], *args: object) -> str:
    """The parser's explanation for an identifier a fast check refused."""
    try:
        parse(*args)
    except InvalidIdentifier as e:
        return e.reason
    return "invalid identifier"


def _check_values(pdu: Mapping[str, Any], room_version: RoomVersion) -> None:
    """The JSON value rules for the parts `check_pdu_format` leaves unchecked."""
    skip = _FULLY_CHECKED if room_version.event_format is EventFormat.V1 else _FULLY_CHECKED_V3
    check_json_value([v for k, v in pdu.items() if k not in skip], strict=room_version.strict_canonical_json)


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    # The exact type check first: isinstance against an ABC is comparatively slow.
    return type(value) is dict or isinstance(value, Mapping)


def _check_short_string(pdu: Mapping[str, Any], key: str) -> str:
    value = pdu.get(key)
    if not isinstance(value, str):
        _fail(f"'{key}' must be a string")
    # 63 code points are at most 252 bytes of UTF-8.
    if len(value) > 63 and not within_id_limit(value):
        _fail(f"'{key}' is longer than {MAX_ID_BYTES} bytes")
    return value


def _check_int(pdu: Mapping[str, Any], key: str) -> int:
    value = pdu.get(key)
    if type(value) is not int:
        _fail(f"'{key}' must be an integer")
    return value


def _check_refs(pdu: Mapping[str, Any], key: str, limit: int, room_version: RoomVersion) -> None:
    refs = pdu.get(key)
    if not isinstance(refs, list):
        _fail(f"'{key}' must be an array")
    if len(refs) > limit:
        _fail(f"'{key}' has {len(refs)} entries, more than {limit}")
    pattern = HASH_EVENT_ID_PATTERNS.get(room_version.event_format)
    for ref in refs:
        if pattern is not None:
            if type(ref) is str and pattern.fullmatch(ref) is not None:
                continue
        elif isinstance(ref, list) and len(ref) == 2 and _is_object(ref[1]) \
                and isinstance(ref[1].get("sha256"), str):
            ref = ref[0]
            if is_valid_event_id(ref, room_version):
                continue
        else:
            _fail(f"'{key}' entries must be [event_id, {{\"sha256\": hash}}] pairs")
        _fail(f"'{key}' has an invalid event ID: {_why(parse_event_id, ref, room_version)}")


def _check_crypto_fields(pdu: Mapping[str, Any]) -> None:
    hashes = pdu.get("hashes")
    if not _is_object(hashes) or not isinstance(hashes.get("sha256"), str):
        _fail("'hashes' must be an object with a string 'sha256'")
    signatures = pdu.get("signatures")
    if not _is_object(signatures):
        _fail("'signatures' must be an object")
    for server_sigs in signatures.values():
        if not _is_object(server_sigs) or not all(
            isinstance(sig, str) for sig in server_sigs.values()
        ):
            _fail("'signatures' must map server names to objects of strings")


def check_pdu_format(pdu: Mapping[str, Any], room_version: RoomVersion, *, with_crypto: bool = True) -> None:
    """Check keys, types, identifiers and shapes (not JSON values or total size).

    ``with_crypto=False`` skips ``hashes`` and ``signatures``, for events about
    to be hashed and signed. Raises `InvalidPDU`.
    """
    for key in pdu:
        if type(key) is not str:
            _fail(f"PDU key {key!r} is not a string")
    event_type = _check_short_string(pdu, "type")
    sender = _check_short_string(pdu, "sender")
    if not is_valid_user_id(sender):
        _fail(f"invalid sender: {_why(parse_user_id, sender)}")
    if "state_key" in pdu:
        _check_short_string(pdu, "state_key")
    if not _is_object(pdu.get("content")):
        _fail("'content' must be an object")
    ts = _check_int(pdu, "origin_server_ts")
    if room_version.strict_canonical_json and not MIN_SAFE_INTEGER <= ts <= MAX_SAFE_INTEGER:
        _fail("'origin_server_ts' is out of the canonical JSON integer range")
    depth = _check_int(pdu, "depth")
    max_depth = MAX_DEPTH_V6 if room_version.strict_canonical_json else MAX_DEPTH_V1
    if not 0 <= depth <= max_depth:
        _fail(f"'depth' must be between 0 and {max_depth}")
    if "unsigned" in pdu and not _is_object(pdu["unsigned"]):
        _fail("'unsigned' must be an object")
    if with_crypto:
        _check_crypto_fields(pdu)

    if "room_id" in pdu or not (room_version.room_id_from_create_event and event_type == "m.room.create"):
        room_id = _check_short_string(pdu, "room_id")
        # A v12 create event with a room_id is left for auth rule 1.2 to reject.
        v12_create = room_version.room_id_from_create_event and event_type == "m.room.create"
        form = None if v12_create else room_version
        if not is_valid_room_id(room_id, form):
            _fail(f"invalid room_id: {_why(parse_room_id, room_id, form)}")
    if room_version.event_format is EventFormat.V1:
        event_id = _check_short_string(pdu, "event_id")
        if not is_valid_event_id(event_id, room_version):
            _fail(f"invalid event_id: {_why(parse_event_id, event_id, room_version)}")
    _check_refs(pdu, "prev_events", MAX_PREV_EVENTS, room_version)
    _check_refs(pdu, "auth_events", MAX_AUTH_EVENTS, room_version)
    if not room_version.redacts_in_content and "redacts" in pdu and not isinstance(pdu["redacts"], str):
        _fail("'redacts' must be a string")


def _random_v1_event_id(server_name: str) -> str:
    opaque = "".join(secrets.choice(_OPAQUE_ALPHABET) for _ in range(18))
    return f"${opaque}:{server_name}"


def build_event(
    fields: Mapping[str, Any], room_version: RoomVersion, server_name: str, signing_key: SigningKey
) -> Event:
    """Hash, sign and identify a new event made by this server.

    ``fields`` holds everything but ``hashes`` and ``signatures`` (any given are
    replaced). For v1/v2 an ``event_id`` is generated on ``server_name`` unless
    supplied. Raises `InvalidPDU` / `EventTooLarge` if the result would not be a
    valid PDU, so no other server would drop it.
    """
    pdu: dict[str, Any] = {k: v for k, v in fields.items() if k != "hashes" and k != "signatures"}
    v1_ids = room_version.event_format is EventFormat.V1
    strict = room_version.strict_canonical_json
    if v1_ids and "event_id" not in pdu:
        pdu["event_id"] = _random_v1_event_id(server_name)
    try:
        check_pdu_format(pdu, room_version, with_crypto=False)
        _check_values(pdu, room_version)
        hashed = {k: v for k, v in pdu.items() if k != "unsigned"} if "unsigned" in pdu else pdu
        hashed_bytes = encode_canonical_json(hashed, float_free=strict)
        content_hash = encode_base64(hashlib.sha256(hashed_bytes).digest())
        pdu["hashes"] = {"sha256": content_hash}
        key_id = key_id_of(signing_key)
        # The full encoding is the hashed one plus `,"key":value` for each added
        # key: `,"hashes":{"sha256":"<hash>"}` is 23 bytes plus the hash, and an
        # ed25519 signature is 86 characters of base64, so the size is known
        # before spending a signature on an event that is too big.
        size = len(hashed_bytes) + 23 + len(content_hash)
        sigs_shape = encode_canonical_json({server_name: {key_id: ""}}, float_free=True)
        size += len(sigs_shape) + _ED25519_SIG_B64 + len("signatures") + 4
        if "unsigned" in pdu:
            size += len(encode_canonical_json(pdu["unsigned"], float_free=strict)) + len("unsigned") + 4
        if size > MAX_PDU_BYTES:
            raise EventTooLarge(f"event is {size} bytes of canonical JSON, over {MAX_PDU_BYTES}")
        signed_bytes = redacted_signing_bytes(pdu, room_version)
        signature = encode_base64(signing_key.sign(signed_bytes).signature)
        pdu["signatures"] = {server_name: {key_id: signature}}
    except InvalidPDU:
        raise
    except CoreError as e:
        raise InvalidPDU(e.reason) from e
    event_id = pdu["event_id"] if v1_ids else event_id_from_reference_hash(
        hashlib.sha256(signed_bytes).digest(), room_version
    )
    return Event(pdu, event_id, room_version)
