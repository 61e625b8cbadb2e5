"""Event hashes, event IDs, and ed25519 signing and verification.

Design notes
------------
The spec defines three digests of an event (server-server-api "Signing Events"):

- the *content hash*: SHA-256 of the canonical JSON of the full event minus
  ``unsigned``, ``signatures`` and ``hashes``; stored as ``hashes.sha256``;
- the *signature*: ed25519 over the canonical JSON of the *redacted* event
  minus ``signatures`` and ``unsigned``;
- the *reference hash*: SHA-256 of the canonical JSON of the redacted event
  minus ``signatures`` and ``unsigned``: the very bytes the signature covers.
  v3+ event IDs are this hash in unpadded base64 (URL-safe from v4).

Because the signed bytes and the reference-hash input are identical, the
builder encodes them once. Redaction for these paths uses
`redaction.redact_shared` (no deep copies), and signing and verification call
PyNaCl directly on the encoded bytes, so the cost over raw ed25519 is one
dict comprehension, one canonical encode and a base64 step. For room versions
6+ (no floats possible) that encode goes through orjson when it is installed
(see `canonical_json`). Measured with bench/bench_core.py on a v10 message:
`sign_event` alone runs at ~0.8 of raw PyNaCl signing, ``add_content_hash`` +
`sign_event` at ~0.6-0.7 (pass ``room_version`` to `add_content_hash` to let it
use the fast encoder too), `verify_event_signatures` at ~0.75-0.85 of raw
verification; `pdu.build_event` is lower because it also validates the event.

Which servers must have signed (`required_signature_servers`):

- the sender's server, except for an invite made from a third-party invite
  (``m.room.member``, ``membership: invite``, ``content.third_party_invite``),
  which the spec lets a different server send; such an event must still carry
  at least one valid signature from some server's known key;
- v1/v2: also the server of the ``event_id``;
- v8+ (restricted joins): for a join with ``join_authorised_via_users_server``,
  also that user's server.

Verification follows "Validating hashes and signatures on received events":
signatures by unknown keys, non-ed25519 algorithms, and (from v5,
`RoomVersion.enforce_key_validity`) keys whose ``valid_until_ts`` is before
the event's ``origin_server_ts`` are skipped; every remaining signature of a
required server must verify, and each required server needs at least one.
Keys come from a caller-supplied ``key_lookup`` so this module stays pure: the
keyring fetches keys before calling in, and is the place that caps
``valid_until_ts`` at seven days ahead as the v5 rules require.
"""

from __future__ import annotations

import binascii
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import nacl.exceptions
import nacl.signing
from signedjson.types import SigningKey
from unpaddedbase64 import decode_base64

from hearth.core.canonical_json import encode_canonical_json
from hearth.core.errors import CoreError, InvalidIdentifier, SignatureError
from hearth.core.events import Event
from hearth.core.ids import domain_of
from hearth.core.redaction import redact_shared
from hearth.core.room_versions import EventFormat, RoomVersion

__all__ = [
    "KeyLookup",
    "VerifyKey",
    "VerifyKeyWithValidity",
    "add_content_hash",
    "check_content_hash",
    "compute_content_hash",
    "compute_event_id",
    "compute_reference_hash",
    "decode_base64",
    "encode_base64",
    "event_id_from_reference_hash",
    "key_id_of",
    "redacted_signing_bytes",
    "required_signature_servers",
    "sign_event",
    "sign_json",
    "verify_event_signatures",
    "verify_json_signature",
]

_NOT_IN_CONTENT_HASH = frozenset({"unsigned", "signatures", "hashes"})
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def encode_base64(data: bytes, urlsafe: bool = False) -> str:
    """Unpadded base64 (URL-safe on request); the binascii call is the fast path.

    Decoding uses `unpaddedbase64.decode_base64`, which accepts both alphabets
    and input with or without padding, as the appendices ask.
    """
    encoded = binascii.b2a_base64(data, newline=False).rstrip(b"=")
    if urlsafe:
        encoded = encoded.translate(_TO_URLSAFE)
    return encoded.decode("ascii")


class VerifyKey(Protocol):
    """An ed25519 public key: `nacl.signing.VerifyKey` or signedjson's wrapper of it."""

    def verify(self, message: bytes, signature: bytes, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class VerifyKeyWithValidity:
    """A server's public key and the time (ms) until which signatures by it count.

    For a current key ``valid_until_ts`` is from the key response (capped by the
    keyring); for an old key it is its ``expired_ts``.
    """

    verify_key: VerifyKey
    valid_until_ts: int

    @classmethod
    def from_base64(cls, key: str, valid_until_ts: int) -> VerifyKeyWithValidity:
        """From the unpadded base64 ``key`` of a ``/_matrix/key/v2`` response."""
        try:
            return cls(nacl.signing.VerifyKey(decode_base64(key)), valid_until_ts)
        except (ValueError, TypeError, nacl.exceptions.CryptoError) as e:
            raise SignatureError(f"invalid ed25519 public key: {e}") from e


KeyLookup = Callable[[str, str], VerifyKeyWithValidity | None]
"""``(server_name, key_id) -> key or None``; None means the key is unknown."""


def key_id_of(signing_key: SigningKey) -> str:
    """``"ed25519:<version>"`` for a signedjson signing key."""
    return f"{signing_key.alg}:{signing_key.version}"


# --- hashes and event IDs ------------------------------------------------------------


def compute_content_hash(pdu: Mapping[str, Any], room_version: RoomVersion | None = None) -> bytes:
    """SHA-256 digest of the event without ``unsigned``, ``signatures``, ``hashes``.

    The hash does not depend on the room version; passing it only lets strict
    versions (no floats possible) use the faster encoder.
    """
    stripped = {k: v for k, v in pdu.items() if k not in _NOT_IN_CONTENT_HASH}
    float_free = room_version is not None and room_version.strict_canonical_json
    return hashlib.sha256(encode_canonical_json(stripped, float_free=float_free)).digest()


def add_content_hash(pdu: Mapping[str, Any], room_version: RoomVersion | None = None) -> dict[str, Any]:
    """A shallow copy of ``pdu`` with ``hashes`` set to its content hash."""
    out = dict(pdu)
    out["hashes"] = {"sha256": encode_base64(compute_content_hash(pdu, room_version))}
    return out


def check_content_hash(pdu: Mapping[str, Any], room_version: RoomVersion | None = None) -> bool:
    """Whether ``hashes.sha256`` matches the event; False when absent or malformed."""
    hashes = pdu.get("hashes")
    if not isinstance(hashes, Mapping):
        return False
    claimed = hashes.get("sha256")
    if not isinstance(claimed, str):
        return False
    try:
        expected = decode_base64(claimed)
        actual = compute_content_hash(pdu, room_version)
    except (ValueError, CoreError):
        return False
    return secrets.compare_digest(expected, actual)


def redacted_signing_bytes(pdu: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """Canonical JSON of the redacted event minus signatures and unsigned.

    These bytes are what an event signature covers and what the reference hash
    digests.
    """
    return encode_canonical_json(
        redact_shared(pdu, room_version, drop_signatures=True), float_free=room_version.strict_canonical_json
    )


def compute_reference_hash(pdu: Mapping[str, Any], room_version: RoomVersion) -> bytes:
    """The SHA-256 reference hash of the event (its v3+ event ID, undecorated)."""
    return hashlib.sha256(redacted_signing_bytes(pdu, room_version)).digest()


def event_id_from_reference_hash(digest: bytes, room_version: RoomVersion) -> str:
    """``$`` + unpadded base64 (URL-safe from v4) of a reference hash."""
    return "$" + encode_base64(digest, urlsafe=room_version.event_format is EventFormat.V4)


def compute_event_id(pdu: Mapping[str, Any], room_version: RoomVersion) -> str:
    """The event's ID: from the PDU in v1/v2, from its reference hash from v3."""
    if room_version.event_format is EventFormat.V1:
        event_id = pdu.get("event_id")
        if not isinstance(event_id, str):
            raise InvalidIdentifier("a v1/v2 PDU must carry a string event_id")
        return event_id
    return event_id_from_reference_hash(compute_reference_hash(pdu, room_version), room_version)


# --- signing --------------------------------------------------------------------------


def _copy_signatures(obj: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    existing = obj.get("signatures")
    if not isinstance(existing, Mapping):
        return {}
    return {server: dict(sigs) for server, sigs in existing.items() if isinstance(sigs, Mapping)}


def sign_json(obj: Mapping[str, Any], server_name: str, signing_key: SigningKey) -> dict[str, Any]:
    """Sign any JSON object per appendices "Signing JSON"; returns a signed copy.

    Used for key responses and request authentication; events use `sign_event`.
    """
    unsigned_view = {k: v for k, v in obj.items() if k != "signatures" and k != "unsigned"}
    signature = signing_key.sign(encode_canonical_json(unsigned_view)).signature
    out = dict(obj)
    signatures = _copy_signatures(obj)
    signatures.setdefault(server_name, {})[key_id_of(signing_key)] = encode_base64(signature)
    out["signatures"] = signatures
    return out


def sign_event(
    pdu: Mapping[str, Any], server_name: str, signing_key: SigningKey, room_version: RoomVersion
) -> dict[str, Any]:
    """A copy of ``pdu`` with ``server_name``'s signature over its redacted form added.

    Existing signatures (other servers', or this server's other keys) are kept.
    The content hash must already be in ``hashes`` (see `add_content_hash`).
    """
    signature = signing_key.sign(redacted_signing_bytes(pdu, room_version)).signature
    out = dict(pdu)
    signatures = _copy_signatures(pdu)
    signatures.setdefault(server_name, {})[key_id_of(signing_key)] = encode_base64(signature)
    out["signatures"] = signatures
    return out


# --- verification ---------------------------------------------------------------------


def _is_third_party_invite(pdu: Mapping[str, Any]) -> bool:
    if pdu.get("type") != "m.room.member":
        return False
    content = pdu.get("content")
    return (isinstance(content, Mapping) and content.get("membership") == "invite"
            and "third_party_invite" in content)


def required_signature_servers(pdu: Mapping[str, Any], room_version: RoomVersion) -> frozenset[str]:
    """The servers whose signatures an event needs (see the module notes).

    Raises `SignatureError` when an identifier naming a required server is malformed.
    """
    servers: set[str] = set()
    try:
        if not _is_third_party_invite(pdu):
            servers.add(domain_of(pdu.get("sender")))
        if room_version.event_format is EventFormat.V1:
            servers.add(domain_of(pdu.get("event_id")))
        if room_version.restricted_join_rule and pdu.get("type") == "m.room.member":
            content = pdu.get("content")
            if (isinstance(content, Mapping) and content.get("membership") == "join"
                    and "join_authorised_via_users_server" in content):
                servers.add(domain_of(content["join_authorised_via_users_server"]))
    except InvalidIdentifier as e:
        raise SignatureError(f"cannot tell which servers must sign: {e.reason}") from e
    return frozenset(servers)


def _verify_server(
    server: str,
    server_sigs: Any,
    signed_bytes: bytes,
    min_valid_ts: int | None,
    key_lookup: KeyLookup,
) -> int:
    """Check every usable signature by ``server``; return how many verified."""
    if not isinstance(server_sigs, Mapping):
        raise SignatureError(f"signatures of {server} are not an object")
    verified = 0
    for key_id, sig_b64 in server_sigs.items():
        if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
            continue
        key = key_lookup(server, key_id)
        if key is None:
            continue
        if min_valid_ts is not None and key.valid_until_ts < min_valid_ts:
            continue
        if not isinstance(sig_b64, str):
            raise SignatureError(f"signature {server} {key_id} is not a string")
        try:
            key.verify_key.verify(signed_bytes, decode_base64(sig_b64))
        except (ValueError, TypeError, nacl.exceptions.CryptoError) as e:
            raise SignatureError(f"bad signature from {server} with {key_id}") from e
        verified += 1
    return verified


def verify_event_signatures(
    event_or_pdu: Event | Mapping[str, Any], room_version: RoomVersion, key_lookup: KeyLookup
) -> None:
    """Check the event carries valid signatures from every server that must sign.

    Works on the full event or a redacted copy alike. Raises `SignatureError`.
    """
    pdu = event_or_pdu.pdu if isinstance(event_or_pdu, Event) else event_or_pdu
    signatures = pdu.get("signatures")
    if not isinstance(signatures, Mapping):
        raise SignatureError("event has no signatures object")
    required = required_signature_servers(pdu, room_version)
    min_valid_ts: int | None = None
    if room_version.enforce_key_validity:
        ts = pdu.get("origin_server_ts")
        if type(ts) is not int:
            raise SignatureError("origin_server_ts must be an integer to check key validity")
        min_valid_ts = ts
    try:
        signed_bytes = redacted_signing_bytes(pdu, room_version)
    except CoreError as e:
        raise SignatureError(f"event cannot be encoded for verification: {e.reason}") from e

    for server in required:
        if server not in signatures:
            raise SignatureError(f"event is not signed by {server}")
        if not _verify_server(server, signatures[server], signed_bytes, min_valid_ts, key_lookup):
            raise SignatureError(f"no signature from a known, valid key of {server}")
    if not required:
        # A third-party invite in v3+: some server must still vouch for it.
        verified = sum(
            _verify_server(server, sigs, signed_bytes, min_valid_ts, key_lookup)
            for server, sigs in signatures.items() if isinstance(server, str)
        )
        if not verified:
            raise SignatureError("third-party invite has no signature from any known, valid key")


def verify_json_signature(
    obj: Mapping[str, Any], server_name: str, key_id: str, verify_key: VerifyKey
) -> None:
    """Check one signature on a signed JSON object (appendices "Checking for a Signature")."""
    try:
        sig_b64 = obj["signatures"][server_name][key_id]
        unsigned_view = {k: v for k, v in obj.items() if k != "signatures" and k != "unsigned"}
        verify_key.verify(encode_canonical_json(unsigned_view), decode_base64(sig_b64))
    except (KeyError, TypeError, ValueError, CoreError, nacl.exceptions.CryptoError) as e:
        raise SignatureError(f"no valid signature from {server_name} with {key_id}") from e
