"""Identifier grammars from the appendices, with the spec's examples."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hearth.core.errors import InvalidIdentifier
from hearth.core.ids import (
    EventID,
    RoomAlias,
    RoomID,
    ServerName,
    UserID,
    domain_of,
    is_valid_event_id,
    is_valid_room_alias,
    is_valid_room_id,
    is_valid_server_name,
    is_valid_user_id,
    is_valid_user_localpart,
    parse_event_id,
    parse_room_alias,
    parse_room_id,
    parse_server_name,
    parse_user_id,
)
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, V1, V2, V3, V4, V11, V12

# The appendices' examples of valid server names.
SPEC_SERVER_NAMES = [
    ("matrix.org", ServerName("matrix.org")),
    ("matrix.org:8888", ServerName("matrix.org", 8888)),
    ("1.2.3.4", ServerName("1.2.3.4")),
    ("1.2.3.4:1234", ServerName("1.2.3.4", 1234)),
    ("[1234:5678::abcd]", ServerName("[1234:5678::abcd]")),
    ("[1234:5678::abcd]:5678", ServerName("[1234:5678::abcd]", 5678)),
]


@pytest.mark.parametrize(("name", "parsed"), SPEC_SERVER_NAMES)
def test_spec_server_names(name: str, parsed: ServerName) -> None:
    assert parse_server_name(name) == parsed
    assert str(parsed) == name
    assert is_valid_server_name(name)


def test_server_name_details() -> None:
    assert parse_server_name("[1234:5678::abcd]").is_ip_literal
    assert parse_server_name("1.2.3.4").is_ip_literal
    assert not parse_server_name("matrix.org").is_ip_literal
    assert is_valid_server_name("MATRIX.org")  # case-sensitive, not normalised
    assert parse_server_name("MATRIX.org").host == "MATRIX.org"
    assert is_valid_server_name("[::ffff:1.2.3.4]")
    assert is_valid_server_name("localhost")
    assert is_valid_server_name("a" * 255)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "matrix.org:",
        "matrix.org:123456",
        "matrix.org:-1",
        "matrix_org",
        "matrix.org/x",
        "mätrix.org",
        "1.2.3.256",
        "[1234:5678::abcd",
        "1234:5678::abcd",
        "[12345::]",
        "[1::2::3]",
        "[fe80::1%eth0]",
        "[]",
        "a" * 256,
        "matrix.org\n",
        " matrix.org",
        "matrix.org:\uff18\uff10",  # full-width digits
    ],
)
def test_invalid_server_names(name: str) -> None:
    assert not is_valid_server_name(name)
    with pytest.raises(InvalidIdentifier):
        parse_server_name(name)


def test_user_ids() -> None:
    uid = parse_user_id("@alice:example.org")
    assert uid == UserID("alice", "example.org")
    assert str(uid) == "@alice:example.org"
    assert uid.is_compliant
    assert parse_user_id("@a.b_c=d-e/f+g0:[::1]:8448", strict=True).domain == "[::1]:8448"
    # Historical localparts are accepted by default but are not compliant.
    for historical in ("@Alice:example.org", "@:example.org", "@日本:example.org", "@a b\x01:example.org"):
        parsed = parse_user_id(historical)
        assert str(parsed) == historical
        assert not parsed.is_compliant
        assert not is_valid_user_id(historical, strict=True)


@pytest.mark.parametrize(
    "bad",
    ["alice:example.org", "@alice", "@alice:", "@a\x00b:example.org", "@alice:exa mple.org",
     "#alice:example.org", "@\ud800:example.org"],
)
def test_invalid_user_ids(bad: str) -> None:
    assert not is_valid_user_id(bad)
    with pytest.raises(InvalidIdentifier):
        parse_user_id(bad)


def test_user_id_length_limit_is_in_bytes() -> None:
    domain = ":example.org"
    ok = "@" + "a" * (255 - 1 - len(domain)) + domain
    assert len(ok) == 255 and is_valid_user_id(ok, strict=True)
    assert not is_valid_user_id("@a" + ok[1:])
    # Multi-byte characters count as their UTF-8 length.
    wide = "@" + "é" * 120 + domain  # 1 + 240 + 12 = 253 bytes
    assert is_valid_user_id(wide)
    assert not is_valid_user_id("@" + "é" * 122 + domain)  # 257 bytes, 135 characters


def test_localpart_grammar() -> None:
    assert is_valid_user_localpart("abc.def_ghi=jkl-mno/pqr+123")
    for bad in ("", "Abc", "a:b", "a b", "a*b", "ä", "a#b"):
        assert not is_valid_user_localpart(bad)
    assert not is_valid_user_localpart(42)  # type: ignore[arg-type]


def test_room_ids() -> None:
    assert parse_room_id("!abc123:matrix.org") == RoomID("abc123", "matrix.org")
    v12_id = "!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ"  # from the pdu_v12 schema
    assert parse_room_id(v12_id) == RoomID("Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ")
    assert str(parse_room_id(v12_id)) == v12_id
    assert is_valid_room_id(v12_id, V12) and not is_valid_room_id(v12_id, V11)
    assert is_valid_room_id("!abc:matrix.org", V11) and not is_valid_room_id("!abc:matrix.org", V12)
    assert is_valid_room_id("!:matrix.org")  # the opaque part may be empty
    for bad in ("abc:matrix.org", "!abc", "!" + "A" * 42, "!" + "A" * 44, "!" + "+" * 43, "!a\x00:m.org",
                "!" + "a" * 250 + ":m.org"):
        assert not is_valid_room_id(bad)


def test_room_aliases() -> None:
    assert parse_room_alias("#room:example.org") == RoomAlias("room", "example.org")
    assert str(parse_room_alias("#日本:example.org:80")) == "#日本:example.org:80"
    assert is_valid_room_alias("#Room With Spaces:example.org")
    too_long = "#" + "a" * 251 + ":a.b"
    for bad in ("room:example.org", "#room", "#ro\x00om:example.org", "#r:bad_domain", too_long):
        assert not is_valid_room_alias(bad)


def test_event_ids_per_format() -> None:
    v1_id = "$a4ecee13e2accdadf56c1025:example.com"  # from the pdu_v1 schema
    v3_id = "$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o"  # from the v3 room version page
    v4_id = "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg"  # from the v4 event ID fragment
    v3_only = "$CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW+/"
    assert parse_event_id(v1_id, V1) == EventID("a4ecee13e2accdadf56c1025", "example.com")
    assert is_valid_event_id(v1_id, V2) and not is_valid_event_id(v1_id, V3)
    assert parse_event_id(v3_id, V3) == EventID(v3_id[1:])
    assert is_valid_event_id(v3_only, V3) and not is_valid_event_id(v3_only, V4)
    assert is_valid_event_id(v4_id, V4) and not is_valid_event_id(v4_id, V3)
    assert not is_valid_event_id(v3_id, V1)
    for rv in KNOWN_ROOM_VERSIONS.values():
        assert is_valid_event_id(v3_id, rv) != (rv in (V1, V2))
    for generic in (v1_id, v3_id, v4_id, v3_only):
        assert is_valid_event_id(generic)
        assert str(parse_event_id(generic)) == generic
    for bad in ("CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW6o", "$short", "$" + "a" * 44, "$x:", "$x:bad_name",
                "$" + "a" * 251 + ":a.b", 7):
        assert not is_valid_event_id(bad)  # type: ignore[arg-type]


def test_domain_of() -> None:
    assert domain_of("@alice:example.org:8448") == "example.org:8448"
    assert domain_of("$abc:[::1]") == "[::1]"
    for bad in ("@alice", "@alice:bad_domain", None, 12):
        with pytest.raises(InvalidIdentifier):
            domain_of(bad)


_localpart_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789._=-/+")
_labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=10)


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=_localpart_chars, min_size=1, max_size=30),
    st.lists(_labels, min_size=1, max_size=4),
    st.none() | st.integers(min_value=0, max_value=65535),
)
def test_user_id_round_trip(localpart: str, labels: list[str], port: int | None) -> None:
    domain = ".".join(labels) + ("" if port is None else f":{port}")
    uid = parse_user_id(f"@{localpart}:{domain}", strict=True)
    assert uid == UserID(localpart, domain)
    assert parse_user_id(str(uid)) == uid


def _parses(parse: Any, *args: Any) -> bool:
    try:
        parse(*args)
    except InvalidIdentifier:
        return False
    return True


_near_ids = st.builds(
    lambda sigil, local, sep, domain: sigil + local + sep + domain,
    st.sampled_from(["@", "!", "#", "$", ""]),
    st.text(alphabet="aZ9._=-/+: \x00é日", max_size=6)
    | st.sampled_from(["Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ",
                       "CD66HAED5npg6074c6pDtLKalHjVfYb2q4Q3LZgrW+/"]),
    st.sampled_from([":", ""]),
    st.sampled_from(["example.org", "1.2.3.4", "1.2.3.400", "[::1]", "[::1]:80", "a_b", "", "x:99999",
                     "x:123456", "[1::2::3]", "ex.org:0", "a" * 250]),
)
_room_versions = st.sampled_from([None, *KNOWN_ROOM_VERSIONS.values()])


@settings(max_examples=300, deadline=None)
@given(_near_ids | st.text(max_size=20), _room_versions)
def test_fast_predicates_agree_with_parsers(s: str, rv: Any) -> None:
    assert is_valid_server_name(s) == _parses(parse_server_name, s)
    assert is_valid_user_id(s) == _parses(parse_user_id, s)
    assert is_valid_user_id(s, strict=True) == _parses(lambda x: parse_user_id(x, strict=True), s)
    assert is_valid_room_alias(s) == _parses(parse_room_alias, s)
    assert is_valid_room_id(s, rv) == _parses(parse_room_id, s, rv)
    assert is_valid_event_id(s, rv) == _parses(parse_event_id, s, rv)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_parsers_only_raise_invalid_identifier(s: str) -> None:
    for parse in (parse_server_name, parse_user_id, parse_room_id, parse_room_alias, parse_event_id):
        with contextlib.suppress(InvalidIdentifier):
            parse(s)
