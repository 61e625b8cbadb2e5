"""Push rule evaluation: every condition kind, glob and key-path rules, actions (pure, no I/O)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hearth.core.events import Event
from hearth.core.power_levels import PowerLevels
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from hearth.push.evaluator import (
    RoomFacts,
    condition_matches,
    evaluate,
    evaluate_for,
    glob_matches,
    lookup,
    member_count_matches,
    outcome_of,
    parse_key,
)
from hearth.push.rules import DefaultRuleChange, PushRule, Ruleset

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"


def message(body: Any = "hello", **content: Any) -> dict[str, Any]:
    return {"type": "m.room.message", "sender": BOB, "room_id": ROOM,
            "content": {"msgtype": "m.text", "body": body, **content}}


def match(cond: dict[str, Any], event: dict[str, Any], facts: RoomFacts | None = None) -> bool:
    return condition_matches(cond, event, ALICE, facts or RoomFacts(member_count=3))


@pytest.mark.parametrize(("key", "path"), [
    ("content.body", ("content", "body")),
    ("content.m\\.relates_to.rel_type", ("content", "m.relates_to", "rel_type")),
    ("content.m\\\\foo", ("content", "m\\foo")),
    ("content.m\\xfoo", ("content", "m\\xfoo")),
    ("type", ("type",)),
    ("a..b", ("a", "", "b")),
    ("trailing\\", ("trailing\\",)),
])
def test_parse_key_handles_escapes(key: str, path: tuple[str, ...]) -> None:
    assert parse_key(key) == path


def test_lookup_walks_nested_objects_only() -> None:
    event = {"content": {"m.relates_to": {"rel_type": "m.thread"}, "list": [1]}}
    assert lookup(event, "content.m\\.relates_to.rel_type") == "m.thread"
    missing = lookup(event, "content.nope")
    assert lookup(event, "content.m.relates_to.rel_type") is missing
    assert lookup(event, "content.list.0") is missing


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("lunc?*", "Lunch plans", True),
    ("lunc?*", "LUNCH", True),
    ("lunc?*", " lunch", False),
    ("lunc?*", "lunc", False),
    ("m.notice", "m.notice", True),
    ("m.notice", "mXnotice", False),  # dots are literal
    ("*", "", True),
    ("a[b]c", "a[b]c", True),  # regex syntax is literal
    ("", "", True),
    ("", "x", False),
])
def test_glob_whole_value(pattern: str, value: str, expected: bool) -> None:
    assert glob_matches(pattern, value) is expected


@pytest.mark.parametrize(("pattern", "body", "expected"), [
    ("ex*ple", "An example event.", True),
    ("ex*ple", "exple", True),
    ("ex*ple", "An exciting triple-whammy", True),
    ("cake", "I like cake!", True),
    ("cake", "I like cakes", False),
    ("cake", "pancake", False),
    ("cake", "CAKE time", True),
    ("cake", "my_cake", False),  # underscore is a word character
    ("cake*lie", "the cake is a lie", True),
    ("@room", "hey @room look", True),
])
def test_glob_on_body_matches_word_bounded_substrings(pattern: str, body: str, expected: bool) -> None:
    cond = {"kind": "event_match", "key": "content.body", "pattern": pattern}
    assert match(cond, message(body)) is expected


def test_event_match_needs_a_string_value() -> None:
    cond = {"kind": "event_match", "key": "content.topic", "pattern": "*"}
    assert match(cond, {"content": {"topic": "x"}})
    assert not match(cond, {"content": {"topic": None}})
    assert not match(cond, {"content": {"topic": 1}})
    assert not match(cond, {"content": {}})
    assert not match({"kind": "event_match", "key": "type"}, message())
    assert not match({"kind": "event_match", "pattern": "x"}, message())


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), ("true", False), (1, False), (None, False),
])
def test_event_property_is_is_exact_and_type_strict(value: Any, expected: bool) -> None:
    event = {"content": {"m.federate": True}}
    cond = {"kind": "event_property_is", "key": "content.m\\.federate", "value": value}
    assert match(cond, event) is expected


def test_event_property_is_scalars_only() -> None:
    assert match({"kind": "event_property_is", "key": "content.n", "value": None}, {"content": {"n": None}})
    assert match({"kind": "event_property_is", "key": "content.n", "value": 5}, {"content": {"n": 5}})
    assert not match({"kind": "event_property_is", "key": "content.n", "value": 1}, {"content": {"n": True}})
    assert not match({"kind": "event_property_is", "key": "content.n", "value": 0}, {"content": {"n": False}})
    assert not match({"kind": "event_property_is", "key": "content.n", "value": [1]}, {"content": {"n": [1]}})
    assert not match({"kind": "event_property_is", "key": "content.n"}, {"content": {"n": None}})
    assert not match({"kind": "event_property_is", "key": "content.n", "value": 1.5}, {"content": {"n": 1.5}})
    big = 2**53
    assert not match({"kind": "event_property_is", "key": "content.n", "value": big}, {"content": {"n": big}})


def test_event_property_contains() -> None:
    event = {"content": {"alt_aliases": ["#somewhere:example.org", "#myroom:example.com", 1, True, {"x": 1}]}}
    cond = {"kind": "event_property_contains", "key": "content.alt_aliases"}
    assert match({**cond, "value": "#myroom:example.com"}, event)
    assert not match({**cond, "value": ":example.com"}, event)
    assert match({**cond, "value": 1}, event)
    assert match({**cond, "value": True}, event)
    assert not match({**cond, "value": {"x": 1}}, event)
    assert not match({**cond, "value": "x"}, {"content": {"alt_aliases": "x"}})
    assert not match({**cond, "value": "x"}, {"content": {}})


def test_contains_display_name() -> None:
    facts = RoomFacts(member_count=3, display_names={ALICE: "Alice B."})
    cond = {"kind": "contains_display_name"}
    assert match(cond, message("hi alice b. how are you"), facts)
    assert not match(cond, message("hi alice bob"), facts)
    assert not match(cond, message("hi Alice B."), RoomFacts())
    assert not match(cond, message(None), facts)
    assert not match(cond, message("malice b."), facts)


@pytest.mark.parametrize(("spec", "count", "expected"), [
    ("2", 2, True), ("2", 3, False), ("==2", 2, True), ("<2", 1, True), ("<2", 2, False),
    (">2", 3, True), (">2", 2, False), ("<=2", 2, True), ("<=2", 3, False), (">=2", 2, True),
    (">=2", 1, False), ("=2", 2, False), ("two", 2, False), ("", 0, False), (" 2", 2, False), (2, 2, False),
])
def test_room_member_count(spec: Any, count: int, expected: bool) -> None:
    assert member_count_matches(spec, count) is expected
    facts = RoomFacts(member_count=count)
    assert match({"kind": "room_member_count", "is": spec}, message(), facts) is expected


@given(st.sampled_from(["==", "<", ">", "<=", ">=", ""]), st.integers(0, 10**6), st.integers(0, 10**6))
def test_room_member_count_agrees_with_python(op: str, number: int, count: int) -> None:
    expected = {"": count == number, "==": count == number, "<": count < number, ">": count > number,
                "<=": count <= number, ">=": count >= number}[op]
    assert member_count_matches(f"{op}{number}", count) is expected


def _event(event_type: str, content: dict[str, Any], state_key: str | None = "") -> Event:
    pdu: dict[str, Any] = {"type": event_type, "sender": ALICE, "room_id": ROOM, "content": content}
    if state_key is not None:
        pdu["state_key"] = state_key
    return Event(pdu, f"${event_type}", KNOWN_ROOM_VERSIONS["10"])


def test_sender_notification_permission() -> None:
    create = _event("m.room.create", {"creator": ALICE, "room_version": "10"})
    pl = _event("m.room.power_levels", {"users": {ALICE: 100, BOB: 40}, "notifications": {"room": 30}})
    cond = {"kind": "sender_notification_permission", "key": "room"}
    bob_msg = message()
    carol_msg = {**message(), "sender": "@carol:example.org"}
    facts = RoomFacts(power_levels=PowerLevels(create, pl))
    assert match(cond, bob_msg, facts)
    assert not match(cond, carol_msg, facts)
    default_pl = _event("m.room.power_levels", {"users": {BOB: 50}})
    assert match(cond, bob_msg, RoomFacts(power_levels=PowerLevels(create, default_pl)))
    assert not match(cond, carol_msg, RoomFacts(power_levels=PowerLevels(create, default_pl)))
    # Without a power levels event the creator has 100, others 0.
    assert match(cond, {**message(), "sender": ALICE}, RoomFacts(power_levels=PowerLevels(create, None)))
    assert not match(cond, bob_msg, RoomFacts(power_levels=PowerLevels(create, None)))
    assert not match({"kind": "sender_notification_permission"}, bob_msg, facts)


def test_unknown_conditions_never_match() -> None:
    assert not match({"kind": "org.example.future"}, message())
    assert not match({}, message())
    rule = PushRule("override", "x", ("notify",), conditions=({"kind": "nope"},))
    assert evaluate([rule], message(), ALICE, RoomFacts()) is None


def test_outcome_of_actions() -> None:
    o = outcome_of("r", ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}])
    assert o.notify and o.highlight and o.tweaks == {"sound": "default", "highlight": True}
    o = outcome_of("r", ["notify", {"set_tweak": "highlight", "value": False}])
    assert o.notify and not o.highlight
    o = outcome_of("r", ["dont_notify", "coalesce"])
    assert not o.notify and o.actions == ()
    assert not outcome_of("r", []).notify


def defaults(member_count: int = 3, **facts: Any) -> tuple[Ruleset, RoomFacts]:
    return Ruleset(ALICE), RoomFacts(member_count=member_count, **facts)


def rule_for(event: dict[str, Any], member_count: int = 3, ruleset: Ruleset | None = None,
             **facts: Any) -> str | None:
    default_set, room = defaults(member_count, **facts)
    outcome = evaluate((ruleset or default_set).in_order(), event, ALICE, room)
    return outcome.rule_id if outcome else None


def test_default_rules_pick_the_expected_rule() -> None:
    assert rule_for(message()) == ".m.rule.message"
    assert rule_for(message(), member_count=2) == ".m.rule.room_one_to_one"
    assert rule_for(message(msgtype="m.notice")) == ".m.rule.suppress_notices"
    mention = message("hi", **{"m.mentions": {"user_ids": [ALICE]}})
    assert rule_for(mention) == ".m.rule.is_user_mention"
    # The body alone no longer mentions (v1.17 removed the legacy body rules).
    assert rule_for(message(f"hi {ALICE} alice")) == ".m.rule.message"
    assert rule_for({"type": "m.room.encrypted", "sender": BOB, "content": {}}) == ".m.rule.encrypted"
    assert rule_for({"type": "m.room.encrypted", "sender": BOB, "content": {}}, 2) == \
        ".m.rule.encrypted_room_one_to_one"
    assert rule_for({"type": "m.call.invite", "sender": BOB, "content": {}}) == ".m.rule.call"
    assert rule_for({"type": "m.reaction", "sender": BOB, "content": {}}) == ".m.rule.reaction"
    edit = message("* x", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}})
    assert rule_for(edit) == ".m.rule.suppress_edits"
    assert rule_for({"type": "m.room.tombstone", "state_key": "", "sender": BOB, "content": {}}) == \
        ".m.rule.tombstone"
    assert rule_for({"type": "m.room.tombstone", "state_key": "x", "sender": BOB, "content": {}}) is None
    assert rule_for({"type": "m.room.server_acl", "state_key": "", "sender": BOB, "content": {}}) == \
        ".m.rule.room.server_acl"
    invite = {"type": "m.room.member", "state_key": ALICE, "sender": BOB, "content": {"membership": "invite"}}
    assert rule_for(invite) == ".m.rule.invite_for_me"
    other_invite = {**invite, "state_key": "@carol:example.org"}
    assert rule_for(other_invite) == ".m.rule.member_event"
    assert rule_for({"type": "m.room.topic", "state_key": "", "sender": BOB, "content": {}}) is None


def test_room_mention_needs_power() -> None:
    create = _event("m.room.create", {"creator": ALICE, "room_version": "10"})
    pl = _event("m.room.power_levels", {"users": {BOB: 50}})
    at_room = message("@room", **{"m.mentions": {"room": True}})
    assert rule_for(at_room, power_levels=PowerLevels(create, pl)) == ".m.rule.is_room_mention"
    low = _event("m.room.power_levels", {"users": {}})
    assert rule_for(at_room, power_levels=PowerLevels(create, low)) == ".m.rule.message"
    assert rule_for(message("@room", **{"m.mentions": {"room": "true"}}),
                    power_levels=PowerLevels(create, pl)) == ".m.rule.message"


def test_user_rules_and_master() -> None:
    mine = PushRule("override", "quiet", (), conditions=({"kind": "event_match", "key": "content.body",
                                                           "pattern": "shh"},))
    room_rule = PushRule("room", ROOM, ("notify", {"set_tweak": "highlight"}))
    sender_rule = PushRule("sender", BOB, ())
    content_rule = PushRule("content", "cake", ("notify", {"set_tweak": "highlight"}), pattern="cake")
    ruleset = Ruleset(ALICE, [mine, content_rule, room_rule, sender_rule])
    assert rule_for(message("shh now"), ruleset=ruleset) == "quiet"
    assert rule_for(message("cake now"), ruleset=ruleset) == "cake"
    assert rule_for(message("hello"), ruleset=ruleset) == ROOM
    assert rule_for({**message(), "room_id": "!other:x"}, ruleset=ruleset) == BOB
    disabled = Ruleset(ALICE, [PushRule("room", ROOM, (), enabled=False)])
    assert rule_for(message(), ruleset=disabled) == ".m.rule.message"
    muted = Ruleset(ALICE, [mine], {".m.rule.master": DefaultRuleChange(enabled=True)})
    assert rule_for(message("shh"), ruleset=muted) == ".m.rule.master"
    outcome = evaluate(muted.in_order(), message(), ALICE, RoomFacts())
    assert outcome is not None and not outcome.notify


@given(st.text(max_size=30), st.text(max_size=30))
def test_glob_without_wildcards_is_case_insensitive_equality(pattern: str, value: str) -> None:
    if "*" in pattern or "?" in pattern:
        return
    expected = re.fullmatch(re.escape(pattern), value, re.IGNORECASE) is not None
    assert glob_matches(pattern, value) is expected


@given(st.text(alphabet="ab*?", max_size=8), st.text(alphabet="ab", max_size=8))
def test_glob_agrees_with_fnmatch_style_reference(pattern: str, value: str) -> None:
    # A tiny reference implementation: * any run, ? one character.
    def ref(p: str, v: str) -> bool:
        if not p:
            return not v
        if p[0] == "*":
            return any(ref(p[1:], v[i:]) for i in range(len(v) + 1))
        return bool(v) and (p[0] == "?" or p[0] == v[0]) and ref(p[1:], v[1:])

    assert glob_matches(pattern, value) is ref(pattern, value)


@given(st.lists(st.text(alphabet="ab.\\x", max_size=5), min_size=1, max_size=4))
def test_escaped_paths_round_trip(parts: list[str]) -> None:
    key = ".".join(p.replace("\\", "\\\\").replace(".", "\\.") for p in parts)
    assert parse_key(key) == tuple(parts)


CAROL = "@carol:example.org"
NAMED = PushRule("override", "my_name", ("notify", {"set_tweak": "highlight"}),
                 conditions=({"kind": "contains_display_name"},))
EVENTS = [
    message("hello"),
    message("Alice, look"),
    message("hi", **{"m.mentions": {"user_ids": [CAROL]}}),
    message("ping", msgtype="m.notice"),
    {"type": "m.room.member", "state_key": CAROL, "sender": BOB, "content": {"membership": "invite"}},
    {"type": "m.room.encrypted", "sender": BOB, "room_id": ROOM, "content": {}},
]


@pytest.mark.parametrize("event", EVENTS)
def test_one_memo_for_many_members_gives_each_their_own_outcome(event: dict[str, Any]) -> None:
    """Shared results never leak one member's answer to another: owner-bound rules stay per member."""
    rulesets = {
        ALICE: Ruleset(ALICE, [NAMED]),
        CAROL: Ruleset(CAROL, [PushRule("content", "look", ("notify",), pattern="look")]),
        BOB: Ruleset(BOB, [], {".m.rule.message": DefaultRuleChange(actions=())}),
        "@dave:example.org": Ruleset("@dave:example.org", [NAMED]),
    }
    room = RoomFacts(member_count=4, display_names={ALICE: "Alice", "@dave:example.org": "Dave"})
    memo: dict[Any, Any] = {}
    for owner, ruleset in rulesets.items():
        alone = evaluate(ruleset.in_order(), event, owner, room)
        assert evaluate(ruleset.in_order(), event, owner, room, memo) == alone


def test_owner_bound_rule_is_tested_per_member() -> None:
    room = RoomFacts(member_count=4, display_names={ALICE: "Alice", CAROL: "Carol"})
    memo: dict[Any, Any] = {}
    event = message("Alice, look")
    first = evaluate(Ruleset(ALICE, [NAMED]).in_order(), event, ALICE, room, memo)
    second = evaluate(Ruleset(CAROL, [NAMED]).in_order(), event, CAROL, room, memo)
    assert first is not None and first.rule_id == "my_name" and first.highlight
    assert second is not None and second.rule_id == ".m.rule.message" and not second.highlight
    assert NAMED.match_key is None
    assert Ruleset(ALICE).find("underride", ".m.rule.message").match_key is not None  # type: ignore[union-attr]


def test_same_rule_different_actions_do_not_share_an_outcome() -> None:
    memo: dict[Any, Any] = {}
    plain = Ruleset(ALICE)
    loud = Ruleset(CAROL, [], {".m.rule.message": DefaultRuleChange(actions=("notify", {"set_tweak": "sound",
                                                                                        "value": "ding"}))})
    a = evaluate(plain.in_order(), message(), ALICE, RoomFacts(member_count=3), memo)
    c = evaluate(loud.in_order(), message(), CAROL, RoomFacts(member_count=3), memo)
    assert a is not None and c is not None and a.rule_id == c.rule_id == ".m.rule.message"
    assert a.tweaks == {} and c.tweaks == {"sound": "ding"}


DAVE = "@dave:example.org"


def _members() -> dict[str, Ruleset]:
    """Members with default rules, and with rules that must not share an outcome with anyone."""
    return {
        ALICE: Ruleset(ALICE),
        BOB: Ruleset(BOB),
        CAROL: Ruleset(CAROL),
        DAVE: Ruleset(DAVE),
        # Rules naming their owner, in a condition, a rule ID and the actions:
        "@erin:example.org": Ruleset("@erin:example.org", [PushRule(
            "override", "me", ("notify",),
            conditions=({"kind": "event_match", "key": "content.body", "pattern": "*@erin:example.org*"},))]),
        "@finn:example.org": Ruleset("@finn:example.org", [PushRule(
            "override", "me", ("notify",),
            conditions=({"kind": "event_match", "key": "content.body", "pattern": "*@finn:example.org*"},))]),
        "@gail:example.org": Ruleset("@gail:example.org", [PushRule("sender", "@gail:example.org", ())]),
        "@hugo:example.org": Ruleset("@hugo:example.org", [], {".m.rule.message": DefaultRuleChange(
            actions=("notify", {"set_tweak": "sound", "value": "@hugo:example.org"}))}),
        # A permission named after the owner: holds or not whatever the event says.
        "@ivy:example.org": Ruleset("@ivy:example.org", [PushRule(
            "override", "perm", ("notify", {"set_tweak": "highlight"}),
            conditions=({"kind": "sender_notification_permission", "key": "@ivy:example.org"},))]),
        "@jon:example.org": Ruleset("@jon:example.org", [PushRule(
            "override", "perm", ("notify", {"set_tweak": "highlight"}),
            conditions=({"kind": "sender_notification_permission", "key": "@jon:example.org"},))]),
        "@kim:example.org": Ruleset("@kim:example.org", [NAMED]),
    }


SHARED_EVENTS = [
    *EVENTS,
    message("hi", **{"m.mentions": {"user_ids": [ALICE, "@erin:example.org"]}}),
    message("ping @FINN:example.org and Kim"),
    {"type": "m.room.member", "state_key": DAVE.upper(), "sender": BOB, "content": {"membership": "invite"}},
    {"type": "m.room.member", "state_key": CAROL, "sender": BOB, "content": {"membership": "invite"}},
    {**message("hello"), "sender": "@gail:example.org"},
]


@pytest.mark.parametrize("event", SHARED_EVENTS)
@pytest.mark.parametrize("reverse", [False, True])
def test_shared_outcomes_equal_each_members_own_evaluation(event: dict[str, Any], reverse: bool) -> None:
    create = _event("m.room.create", {"creator": ALICE, "room_version": "10"})
    pl = _event("m.room.power_levels", {"notifications": {"@ivy:example.org": 0}})
    room = RoomFacts(member_count=11, power_levels=PowerLevels(create, pl),
                     display_names={"@kim:example.org": "Kim"})
    members = list(_members().items())
    if reverse:
        members.reverse()
    memo: dict[Any, Any] = {}
    for owner, ruleset in members:
        alone = evaluate(ruleset.in_order(), event, owner, room)
        assert evaluate_for(ruleset, event, room, memo) == alone, owner


def test_default_rulesets_share_a_shape_and_owner_naming_outcomes_do_not() -> None:
    members = _members()
    assert members[ALICE].shape is not None and members[ALICE].shape == members[BOB].shape
    assert members["@erin:example.org"].shape == members["@finn:example.org"].shape is not None
    for unsafe in ("@gail:example.org", "@hugo:example.org", "@ivy:example.org", "@kim:example.org"):
        assert members[unsafe].shape is None, unsafe
