"""Hashes, event IDs, signing and verification, against the appendices test vectors."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from signedjson.key import decode_signing_key_base64, generate_signing_key, get_verify_key
from signedjson.types import SigningKey

from hearth.core.crypto import (
    KeyLookup,
    VerifyKeyWithValidity,
    add_content_hash,
    check_content_hash,
    compute_content_hash,
    compute_event_id,
    compute_reference_hash,
    decode_base64,
    encode_base64,
    redacted_signing_bytes,
    required_signature_servers,
    sign_event,
    sign_json,
    verify_event_signatures,
    verify_json_signature,
)
from hearth.core.errors import InvalidIdentifier, SignatureError
from hearth.core.events import Event
from hearth.core.ids import is_valid_event_id
from hearth.core.redaction import redact
from hearth.core.room_versions import (
    KNOWN_ROOM_VERSIONS,
    V1,
    V2,
    V3,
    V4,
    V5,
    V6,
    V7,
    V8,
    V9,
    V11,
    V12,
    RoomVersion,
)

SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SPEC_KEY = decode_signing_key_base64("ed25519", "1", SPEC_SEED)
FAR_FUTURE = 2**62


def lookup_for(keys: dict[tuple[str, str], VerifyKeyWithValidity]) -> KeyLookup:
    return lambda server, key_id: keys.get((server, key_id))


SPEC_LOOKUP = lookup_for(
    {("domain", "ed25519:1"): VerifyKeyWithValidity(get_verify_key(SPEC_KEY), FAR_FUTURE)}
)


# --- appendices "Cryptographic Test Vectors" -------------------------------------------


def test_json_signing_vectors() -> None:
    assert sign_json({}, "domain", SPEC_KEY) == {
        "signatures": {"domain": {"ed25519:1": (
            "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ")}}
    }
    signed = sign_json({"one": 1, "two": "Two"}, "domain", SPEC_KEY)
    assert signed == {
        "one": 1,
        "signatures": {"domain": {"ed25519:1": (
            "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw")}},
        "two": "Two",
    }
    verify_key = get_verify_key(SPEC_KEY)
    verify_json_signature(signed, "domain", "ed25519:1", verify_key)
    # unsigned is outside the signature; other changes are not.
    verify_json_signature({**signed, "unsigned": {"x": 1}}, "domain", "ed25519:1", verify_key)
    with pytest.raises(SignatureError):
        verify_json_signature({**signed, "two": "2"}, "domain", "ed25519:1", verify_key)
    with pytest.raises(SignatureError):
        verify_json_signature(signed, "domain", "ed25519:2", verify_key)


def test_sign_json_keeps_other_signatures_and_unsigned() -> None:
    obj = {"a": 1, "unsigned": {"age_ts": 5}, "signatures": {"other": {"ed25519:x": "sig"}}}
    signed = sign_json(obj, "domain", SPEC_KEY)
    assert signed["unsigned"] == {"age_ts": 5}
    assert signed["signatures"]["other"] == {"ed25519:x": "sig"}
    assert obj["signatures"] == {"other": {"ed25519:x": "sig"}}  # input untouched
    assert signed["signatures"]["domain"] == sign_json({"a": 1}, "domain", SPEC_KEY)["signatures"]["domain"]


MINIMAL_EVENT: dict[str, Any] = {
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "signatures": {},
    "hashes": {},
    "type": "X",
    "content": {},
    "prev_events": [],
    "auth_events": [],
    "depth": 3,
    "unsigned": {"age_ts": 1000000},
}
MINIMAL_EVENT_SIGNED: dict[str, Any] = {
    "auth_events": [],
    "content": {},
    "depth": 3,
    "hashes": {"sha256": "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "prev_events": [],
    "room_id": "!x:domain",
    "sender": "@a:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5"
            "KLjAWbOoMszkwsQma+lYAg"
        }
    },
    "type": "X",
    "unsigned": {"age_ts": 1000000},
}
MESSAGE_EVENT: dict[str, Any] = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {},
    "unsigned": {"age_ts": 1000000},
}
MESSAGE_EVENT_SIGNED: dict[str, Any] = {
    "content": {"body": "Here is the message content"},
    "event_id": "$0:domain",
    "hashes": {"sha256": "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},
    "origin": "domain",
    "origin_server_ts": 1000000,
    "type": "m.room.message",
    "room_id": "!r:domain",
    "sender": "@u:domain",
    "signatures": {
        "domain": {
            "ed25519:1": "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn2"
            "41eYHYMGCA5McEiVPdhzBA"
        }
    },
    "unsigned": {"age_ts": 1000000},
}


@pytest.mark.parametrize(("given_event", "expected"), [(MINIMAL_EVENT, MINIMAL_EVENT_SIGNED),
                                                       (MESSAGE_EVENT, MESSAGE_EVENT_SIGNED)])
@pytest.mark.parametrize("room_version", [V1, V2, V3, V4, V5], ids=lambda rv: f"v{rv.identifier}")
def test_event_signing_vectors(
    given_event: dict[str, Any], expected: dict[str, Any], room_version: RoomVersion
) -> None:
    # The vectors use the original redaction rules (they keep `origin`), shared by v1-v5.
    original = copy.deepcopy(given_event)
    signed = sign_event(add_content_hash(given_event), "domain", SPEC_KEY, room_version)
    assert signed == expected
    assert given_event == original
    assert check_content_hash(signed)
    if room_version.identifier in ("1", "2") and "event_id" not in signed:
        with pytest.raises(SignatureError):  # v1/v2 need the event_id's server
            verify_event_signatures(signed, room_version, SPEC_LOOKUP)
    else:
        verify_event_signatures(signed, room_version, SPEC_LOOKUP)


def test_vector_signatures_differ_under_v11_rules() -> None:
    # v11 stops protecting `origin`, so the signed bytes (and signature) change.
    signed = sign_event(add_content_hash(MINIMAL_EVENT), "domain", SPEC_KEY, V11)
    assert signed["signatures"] != MINIMAL_EVENT_SIGNED["signatures"]
    verify_event_signatures(signed, V11, SPEC_LOOKUP)


def test_content_hash_matches_the_spec_definition() -> None:
    stripped = {k: v for k, v in MESSAGE_EVENT.items() if k not in ("unsigned", "signatures", "hashes")}
    by_hand = hashlib.sha256(json.dumps(stripped, sort_keys=True, separators=(",", ":"),
                                        ensure_ascii=False).encode()).digest()
    assert compute_content_hash(MESSAGE_EVENT) == by_hand
    for rv in KNOWN_ROOM_VERSIONS.values():  # the version only picks the encoder
        assert compute_content_hash(MESSAGE_EVENT, rv) == by_hand
        assert check_content_hash(MESSAGE_EVENT_SIGNED, rv)
    assert encode_base64(by_hand) == MESSAGE_EVENT_SIGNED["hashes"]["sha256"]


def test_check_content_hash() -> None:
    assert check_content_hash(MESSAGE_EVENT_SIGNED)
    # unsigned and signatures are outside the hash.
    assert check_content_hash({**MESSAGE_EVENT_SIGNED, "unsigned": {}, "signatures": {"x": {}}})
    assert not check_content_hash({**MESSAGE_EVENT_SIGNED, "content": {"body": "changed"}})
    assert not check_content_hash({k: v for k, v in MESSAGE_EVENT_SIGNED.items() if k != "hashes"})
    for bad_hashes in ({}, {"sha256": 5}, {"sha256": "!!!"}, "x", {"sha256": "é"}):
        assert not check_content_hash({**MESSAGE_EVENT_SIGNED, "hashes": bad_hashes})
    assert not check_content_hash({**MESSAGE_EVENT_SIGNED, "bad": float("nan")})


def test_reference_hash_and_event_id_formats() -> None:
    pdu = MINIMAL_EVENT_SIGNED
    redacted = {k: v for k, v in pdu.items() if k not in ("signatures", "unsigned")}
    by_hand = hashlib.sha256(json.dumps(redacted, sort_keys=True, separators=(",", ":")).encode()).digest()
    assert compute_reference_hash(pdu, V3) == by_hand
    assert redacted_signing_bytes(pdu, V3) == json.dumps(
        redacted, sort_keys=True, separators=(",", ":")
    ).encode()
    v3_id = compute_event_id(pdu, V3)
    v4_id = compute_event_id(pdu, V4)
    assert v3_id == "$" + encode_base64(by_hand)
    assert v4_id == "$" + encode_base64(by_hand, urlsafe=True)
    assert decode_base64(v3_id[1:]) == decode_base64(v4_id[1:]) == by_hand
    assert len(v3_id) == len(v4_id) == 44
    assert is_valid_event_id(v3_id, V3) and is_valid_event_id(v4_id, V4)
    # Signatures and unsigned do not affect the ID; redactable content does not either.
    assert compute_event_id({**pdu, "signatures": {}, "unsigned": {"a": 1}}, V4) == v4_id
    assert compute_event_id({**pdu, "content": {"body": "x"}}, V4) == v4_id
    assert compute_event_id({**pdu, "depth": 4}, V4) != v4_id
    # v1/v2 read the event ID from the PDU.
    assert compute_event_id(MESSAGE_EVENT_SIGNED, V1) == "$0:domain"
    with pytest.raises(InvalidIdentifier):
        compute_event_id(pdu, V2)


# --- who must sign --------------------------------------------------------------------


def member_event(membership: str, **content: Any) -> dict[str, Any]:
    return {
        "type": "m.room.member", "sender": "@joiner:joiner.org", "state_key": "@joiner:joiner.org",
        "event_id": "$x:creator.org", "content": {"membership": membership, **content},
    }


def test_required_signature_servers() -> None:
    join = member_event("join", join_authorised_via_users_server="@admin:resident.org")
    assert required_signature_servers(join, V7) == {"joiner.org"}
    assert required_signature_servers(join, V8) == {"joiner.org", "resident.org"}
    assert required_signature_servers(join, V12) == {"joiner.org", "resident.org"}
    assert required_signature_servers(join, V1) == {"joiner.org", "creator.org"}
    leave = member_event("leave", join_authorised_via_users_server="@admin:resident.org")
    assert required_signature_servers(leave, V8) == {"joiner.org"}
    tpi = member_event("invite", third_party_invite={"signed": {}})
    assert required_signature_servers(tpi, V6) == frozenset()
    assert required_signature_servers(tpi, V2) == {"creator.org"}
    for bad in ({**join, "sender": "nobody"}, member_event("join", join_authorised_via_users_server=5)):
        with pytest.raises(SignatureError):
            required_signature_servers(bad, V8)


# --- verification ---------------------------------------------------------------------


class Servers:
    """A few servers with keys, and the lookup a keyring would provide."""

    def __init__(self) -> None:
        self.keys: dict[str, SigningKey] = {}
        self.known: dict[tuple[str, str], VerifyKeyWithValidity] = {}

    def add(self, server: str, version: str = "1", valid_until_ts: int = FAR_FUTURE) -> SigningKey:
        key = generate_signing_key(version)
        self.keys[server] = key
        verify_key = VerifyKeyWithValidity(get_verify_key(key), valid_until_ts)
        self.known[(server, f"ed25519:{version}")] = verify_key
        return key

    def sign(self, pdu: dict[str, Any], server: str, rv: RoomVersion) -> dict[str, Any]:
        return sign_event(pdu, server, self.keys[server], rv)

    def lookup(self, server: str, key_id: str) -> VerifyKeyWithValidity | None:
        return self.known.get((server, key_id))


def message(rv: RoomVersion, sender_server: str = "a.org", ts: int = 1000) -> dict[str, Any]:
    pdu: dict[str, Any] = {
        "type": "m.room.message", "sender": f"@u:{sender_server}", "room_id": "!r:a.org",
        "content": {"body": "hi"}, "origin_server_ts": ts, "depth": 1, "prev_events": [], "auth_events": [],
    }
    if rv.identifier in ("1", "2"):
        pdu["event_id"] = f"$e:{sender_server}"
    return add_content_hash(pdu)


def test_verify_basic_and_redacted_copy() -> None:
    servers = Servers()
    servers.add("a.org")
    for rv in KNOWN_ROOM_VERSIONS.values():
        signed = servers.sign(message(rv), "a.org", rv)
        verify_event_signatures(signed, rv, servers.lookup)
        verify_event_signatures(Event(signed, "$id", rv), rv, servers.lookup)
        # The spec: verification succeeds on the redacted copy too.
        verify_event_signatures(redact(signed, rv), rv, servers.lookup)
        with pytest.raises(SignatureError):
            verify_event_signatures({**signed, "depth": 2}, rv, servers.lookup)


def test_v1_event_id_server_must_sign() -> None:
    servers = Servers()
    servers.add("a.org")
    servers.add("b.org")
    pdu = {**message(V1), "event_id": "$e:b.org"}
    only_a = servers.sign(pdu, "a.org", V1)
    with pytest.raises(SignatureError, match=r"b\.org"):
        verify_event_signatures(only_a, V1, servers.lookup)
    verify_event_signatures(servers.sign(only_a, "b.org", V1), V1, servers.lookup)


def test_restricted_join_needs_authorising_server() -> None:
    servers = Servers()
    servers.add("joiner.org")
    servers.add("resident.org")
    pdu = add_content_hash({
        **member_event("join", join_authorised_via_users_server="@admin:resident.org"),
        "room_id": "!r:resident.org", "origin_server_ts": 5, "depth": 3, "prev_events": [], "auth_events": [],
    })
    del pdu["event_id"]
    by_joiner = servers.sign(pdu, "joiner.org", V9)
    # No restricted joins before v8 (and v7's redaction rules drop the key).
    verify_event_signatures(servers.sign(pdu, "joiner.org", V7), V7, servers.lookup)
    with pytest.raises(SignatureError, match=r"resident\.org"):
        verify_event_signatures(by_joiner, V9, servers.lookup)
    both = servers.sign(by_joiner, "resident.org", V9)
    assert set(both["signatures"]) == {"joiner.org", "resident.org"}
    verify_event_signatures(both, V9, servers.lookup)


def test_third_party_invite_may_come_from_another_server() -> None:
    servers = Servers()
    servers.add("other.org")
    pdu = add_content_hash({
        **member_event("invite", third_party_invite={"signed": {"mxid": "@j:joiner.org", "token": "t"}}),
        "room_id": "!r:a.org", "origin_server_ts": 5, "depth": 3, "prev_events": [], "auth_events": [],
    })
    del pdu["event_id"]
    verify_event_signatures(servers.sign(pdu, "other.org", V6), V6, servers.lookup)
    with pytest.raises(SignatureError, match="any known"):
        verify_event_signatures({**pdu, "signatures": {}}, V6, servers.lookup)


def test_key_validity_enforced_from_v5() -> None:
    servers = Servers()
    servers.add("a.org", valid_until_ts=999)
    for rv, ok in ((V4, True), (V5, False), (V6, False)):
        signed = servers.sign(message(rv, ts=1000), "a.org", rv)
        if ok:
            verify_event_signatures(signed, rv, servers.lookup)
        else:
            with pytest.raises(SignatureError, match="known, valid key"):
                verify_event_signatures(signed, rv, servers.lookup)
        # A key valid exactly until origin_server_ts still counts.
        verify_event_signatures(servers.sign(message(rv, ts=999), "a.org", rv), rv, servers.lookup)


def test_unknown_keys_are_skipped_but_bad_known_signatures_fail() -> None:
    servers = Servers()
    servers.add("a.org")
    signed = servers.sign(message(V6), "a.org", V6)
    sigs = signed["signatures"]["a.org"]
    extra = {**signed, "signatures": {"a.org": {**sigs, "ed25519:unknown": "AAAA", "curve25519:x": "y"}}}
    verify_event_signatures(extra, V6, servers.lookup)
    # Only unknown keys: nothing to check against.
    unknown_only = {**signed, "signatures": {"a.org": {"ed25519:unknown": sigs["ed25519:1"]}}}
    with pytest.raises(SignatureError):
        verify_event_signatures(unknown_only, V6, servers.lookup)
    # A second known key whose signature is wrong fails the event.
    servers.known[("a.org", "ed25519:2")] = servers.known[("a.org", "ed25519:1")]
    other_sig = encode_base64(bytes(64))
    with pytest.raises(SignatureError, match="bad signature"):
        verify_event_signatures({**signed, "signatures": {"a.org": {**sigs, "ed25519:2": other_sig}}},
                                V6, servers.lookup)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("signatures"),
        lambda p: p.update(signatures=[]),
        lambda p: p.update(signatures={"a.org": "x"}),
        lambda p: p.update(signatures={"a.org": {"ed25519:1": 5}}),
        lambda p: p.update(signatures={"a.org": {"ed25519:1": "not base64 ###"}}),
        lambda p: p.update(signatures={"a.org": {"ed25519:1": "AAAA"}}),
        lambda p: p.update(signatures={"b.org": {}}),
        lambda p: p.update(origin_server_ts="1000"),
        lambda p: p.update(sender="@u"),
        lambda p: p.update(depth=float("nan")),
    ],
)
def test_malformed_signatures_raise_signature_error(mutate: Any) -> None:
    servers = Servers()
    servers.add("a.org")
    signed = copy.deepcopy(servers.sign(message(V6), "a.org", V6))
    mutate(signed)
    with pytest.raises(SignatureError):
        verify_event_signatures(signed, V6, servers.lookup)


def test_verify_key_from_base64() -> None:
    key = VerifyKeyWithValidity.from_base64(encode_base64(get_verify_key(SPEC_KEY).encode()), 5)
    assert key.valid_until_ts == 5
    for bad in ("short", "###", ""):
        with pytest.raises(SignatureError):
            VerifyKeyWithValidity.from_base64(bad, 0)


# --- properties -----------------------------------------------------------------------

_PROPERTY_KEY = generate_signing_key("p")
_PROPERTY_LOOKUP = lookup_for(
    {("p.org", "ed25519:p"): VerifyKeyWithValidity(get_verify_key(_PROPERTY_KEY), FAR_FUTURE)}
)
_text = st.text(max_size=10)
_leaf = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _text
_content = st.dictionaries(
    _text, st.recursive(_leaf, lambda c: st.lists(c, max_size=3), max_leaves=5), max_size=5
)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(list(KNOWN_ROOM_VERSIONS.values())),
    st.sampled_from(["m.room.message", "m.room.member", "m.room.power_levels", "m.room.create", "x.custom"]),
    _content,
    _content,
)
def test_sign_verify_and_tamper(rv: RoomVersion, event_type: str, content: dict[str, Any],
                                changed: dict[str, Any]) -> None:
    pdu = sign_event(add_content_hash({**message(rv, "p.org"), "type": event_type, "content": content}),
                     "p.org", _PROPERTY_KEY, rv)
    verify_event_signatures(pdu, rv, _PROPERTY_LOOKUP)
    assert check_content_hash(pdu)
    if changed != content:
        tampered = {**pdu, "content": changed}
        # The content hash always catches it; the signature does when redaction keeps the change.
        assert not check_content_hash(tampered)
        if redact(tampered, rv) != redact(pdu, rv):
            with pytest.raises(SignatureError):
                verify_event_signatures(tampered, rv, _PROPERTY_LOOKUP)
    for key in ("sender", "origin_server_ts", "depth", "hashes", "type"):
        tampered = {**pdu, key: "@v:p.org" if key == "sender" else 7 if key != "hashes" else {"sha256": "x"}}
        if tampered[key] != pdu[key]:
            with pytest.raises(SignatureError):
                verify_event_signatures(tampered, rv, _PROPERTY_LOOKUP)
