"""Push rule evaluation: which actions a ruleset gives an event, with no I/O.

Everything an evaluation needs about the room (member count, power levels,
display names) comes in a `RoomFacts` the caller loads once per room; the
event is its JSON (a PDU has every field rules look at: `type`, `sender`,
`room_id`, `state_key`, `content`). Regular expressions for globs and parsed
key paths are cached, so evaluating the same default rules for thousands of
users costs dictionary lookups, not compilation. Within one event, results of
conditions and rules, and outcomes, are shared by every member it is evaluated
for (`memo`): only conditions that depend on the rule's owner
(`contains_display_name`) are tested per member, so a room of many members
costs little more than one.

Conditions (push module, "Conditions"): `event_match` (case-insensitive glob
over the whole string value; over `content.body` any word-bounded substring),
`event_property_is`, `event_property_contains` (exact, type-strict, scalar
values only), `contains_display_name`, `room_member_count` and
`sender_notification_permission`. An unknown or malformed condition never
matches, which disables its rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hearth.core.power_levels import NOTIFICATION_DEFAULT, USERS_DEFAULT, PowerLevels
from hearth.push.rules import Condition, PushRule, Ruleset, strip_historical

_MAX_SAFE_INT = 2**53 - 1
_WORD_CHAR = "A-Za-z0-9_"
_MEMBER_COUNT = re.compile(r"(==|<=|>=|<|>)?([0-9]{1,15})")


@dataclass(frozen=True, slots=True)
class RoomFacts:
    """What conditions need to know about the room at the event."""

    member_count: int = 0
    power_levels: PowerLevels | None = None
    # User ID -> display name in this room (only needed for contains_display_name).
    display_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The actions of the rule that matched, and what they mean for counts and pushes."""

    rule_id: str
    actions: tuple[Any, ...]
    notify: bool
    highlight: bool
    tweaks: dict[str, Any]


def parse_key(key: str) -> tuple[str, ...]:
    """A dot-separated property path, with `\\.` and `\\\\` escapes (appendices)."""
    return _parse_key(key)


@lru_cache(maxsize=1024)
def _parse_key(key: str) -> tuple[str, ...]:
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == "\\" and i + 1 < len(key) and key[i + 1] in ".\\":
            current.append(key[i + 1])
            i += 2
            continue
        if ch == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


_MISSING = object()


def lookup(event: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted path, or `_MISSING`."""
    value: Any = event
    for part in _parse_key(key):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


@lru_cache(maxsize=4096)
def glob_regex(pattern: str, words: bool) -> re.Pattern[str]:
    """`*` is any run of characters, `?` exactly one; everything else is literal.

    With `words`, the pattern matches any substring that starts and ends at a
    word boundary (start or end of the value, or a character outside
    [A-Za-z0-9_]); without, it must match the whole value.
    """
    body = "".join(".*?" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    if words:
        body = f"(?<![{_WORD_CHAR}]){body}(?![{_WORD_CHAR}])"
    return re.compile(body, re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4096)
def _word_regex(text: str) -> re.Pattern[str]:
    """`text` literally, case-insensitively, between word boundaries."""
    return re.compile(f"(?<![{_WORD_CHAR}]){re.escape(text)}(?![{_WORD_CHAR}])", re.IGNORECASE)


def glob_matches(pattern: str, value: str, *, words: bool = False) -> bool:
    regex = glob_regex(pattern, words)
    return (regex.search(value) if words else regex.fullmatch(value)) is not None


def _is_scalar(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def _same(a: Any, b: Any) -> bool:
    """Exact equality that never casts: True is not 1, "1" is not 1."""
    return type(a) is type(b) and a == b


def condition_matches(cond: Condition, event: Mapping[str, Any], user_id: str, room: RoomFacts) -> bool:
    kind = cond.get("kind")
    if kind == "event_match":
        key, pattern = cond.get("key"), cond.get("pattern")
        if not isinstance(key, str) or not isinstance(pattern, str):
            return False
        value = lookup(event, key)
        if not isinstance(value, str):
            return False
        return glob_matches(pattern, value, words=key == "content.body")
    if kind == "event_property_is":
        key, expected = cond.get("key"), cond.get("value", _MISSING)
        if not isinstance(key, str) or expected is _MISSING or not _is_scalar(expected):
            return False
        value = lookup(event, key)
        return value is not _MISSING and _is_scalar(value) and _same(value, expected)
    if kind == "event_property_contains":
        key, expected = cond.get("key"), cond.get("value", _MISSING)
        if not isinstance(key, str) or expected is _MISSING or not _is_scalar(expected):
            return False
        value = lookup(event, key)
        if not isinstance(value, list):
            return False
        return any(_is_scalar(item) and _same(item, expected) for item in value)
    if kind == "contains_display_name":
        name = room.display_names.get(user_id)
        body = lookup(event, "content.body")
        if not name or not isinstance(body, str):
            return False
        return _word_regex(name).search(body) is not None
    if kind == "room_member_count":
        return member_count_matches(cond.get("is"), room.member_count)
    if kind == "sender_notification_permission":
        key = cond.get("key")
        sender = event.get("sender")
        if not isinstance(key, str) or not isinstance(sender, str):
            return False
        power = room.power_levels
        if power is None:
            return USERS_DEFAULT >= NOTIFICATION_DEFAULT
        return power.user_level(sender) >= power.notification_level(key)
    return False


def member_count_matches(spec: object, count: int) -> bool:
    """`is` is a decimal integer with an optional ==, <, >, <= or >= prefix (== by default)."""
    if not isinstance(spec, str):
        return False
    m = _MEMBER_COUNT.fullmatch(spec)
    if m is None:
        return False
    op, number = m.group(1) or "==", int(m.group(2))
    if op == "==":
        return count == number
    if op == "<":
        return count < number
    if op == ">":
        return count > number
    if op == "<=":
        return count <= number
    return count >= number


def rule_matches(
    rule: PushRule, event: Mapping[str, Any], user_id: str, room: RoomFacts, memo: dict[Any, Any]
) -> bool:
    """Whether every condition holds; owner-independent results are shared through `memo` (see `evaluate`)."""
    if not rule.enabled:
        return False
    for cond, key in rule.tests:
        holds: bool | None = None if key is None else memo.get(key)
        if holds is None:
            holds = condition_matches(cond, event, user_id, room)
            if key is not None:
                memo[key] = holds
        if not holds:
            return False
    return True


def outcome_of(rule_id: str, actions: Sequence[Any]) -> Outcome:
    """What a rule's actions mean: notify?, highlight?, and the tweaks for the gateway."""
    kept = strip_historical(actions)
    tweaks: dict[str, Any] = {}
    notify = False
    for action in kept:
        if action == "notify":
            notify = True
        elif isinstance(action, Mapping):
            name = action.get("set_tweak")
            if isinstance(name, str):
                tweaks[name] = action.get("value", True) if name == "highlight" else action.get("value")
    highlight = tweaks.get("highlight") is True
    return Outcome(rule_id, kept, notify, highlight, tweaks)


def evaluate(
    rules: Sequence[PushRule], event: Mapping[str, Any], user_id: str, room: RoomFacts,
    memo: dict[Any, Any] | None = None,
) -> Outcome | None:
    """The outcome of the first enabled rule that matches, or None if none does.

    `memo` is for one event and one `room`: pass the same dict for every member
    the event is evaluated for, and conditions (and whole rules) that do not
    depend on their owner are tested once.
    """
    if memo is None:
        memo = {}
    for rule in rules:
        if not rule.enabled:
            continue
        key = rule.match_key
        matched: bool | None = None if key is None else memo.get(key)
        if matched is None:
            matched = rule_matches(rule, event, user_id, room, memo)
            if key is not None:
                memo[key] = matched
        if matched:
            outcome_key = (rule.rule_id, rule.actions_key)
            outcome = memo.get(outcome_key)
            if outcome is None:
                outcome = memo[outcome_key] = outcome_of(rule.rule_id, rule.actions)
            return outcome
    return None


def evaluate_for(
    ruleset: Ruleset, event: Mapping[str, Any], room: RoomFacts, memo: dict[Any, Any]
) -> Outcome | None:
    """`evaluate` for the owner of `ruleset`, sharing whole outcomes across members through `memo`.

    Members whose rulesets have one shape (`Ruleset.shape`) get the same outcome
    from an event that does not contain their ID (no mention, no invite of
    them): that outcome is worked out once per event, and only members the
    event names are evaluated on their own.
    """
    owner = ruleset.user_id
    if ruleset.shape is None or owner.casefold() in _event_text(event, memo):
        return evaluate(ruleset.in_order(), event, owner, room, memo)
    shape_key = ("shape", ruleset.shape)
    if shape_key not in memo:
        memo[shape_key] = evaluate(ruleset.in_order(), event, owner, room, memo)
    outcome: Outcome | None = memo[shape_key]
    return outcome


def _event_text(event: Mapping[str, Any], memo: dict[Any, Any]) -> str:
    """Every key and string value in the event, case-folded, NUL-separated (once per event)."""
    text = memo.get(_EVENT_TEXT)
    if text is None:
        parts: list[str] = []
        _collect(event, parts)
        text = memo[_EVENT_TEXT] = "\x00".join(parts).casefold()
    return str(text)


_EVENT_TEXT = ("event_text",)


def _collect(value: Any, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(value)
    elif isinstance(value, Mapping):
        for k, v in value.items():
            parts.append(str(k))
            _collect(v, parts)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _collect(v, parts)
