"""Push rules: the model, the server-default ruleset (as data) and a user's ruleset.

The defaults are the "Predefined Rules" of the push module (v1.17: the legacy
body-matching mention rules `.m.rule.contains_display_name`,
`.m.rule.contains_user_name` and `.m.rule.roomnotif` are gone, so there are no
default content rules). Rules that name the owner ("[the user's Matrix ID]")
are templates filled in per user.

Evaluation order (`Ruleset.in_order`) is by kind: override, content, room,
sender, underride. Within a kind user-defined rules come before server
defaults, except `.m.rule.master`, which always comes first. The same order is
what clients are served.

`room`, `sender` and `content` rules have no conditions of their own; their
predefined conditions (`implied_conditions`) are an exact match on `room_id`
or `sender`, and a word match of `pattern` on `content.body`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

KINDS: tuple[str, ...] = ("override", "content", "room", "sender", "underride")
CONDITION_KINDS = frozenset({"override", "underride"})
MASTER = ".m.rule.master"
# Actions older spec versions defined; they mean nothing and are dropped.
HISTORICAL_ACTIONS = frozenset({"dont_notify", "coalesce"})
# Condition kinds whose result depends on whose rule it is, not only on the event and room.
OWNER_DEPENDENT_KINDS = frozenset({"contains_display_name"})

_USER = object()  # placeholder in the templates for the owner's user ID

Condition = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class PushRule:
    kind: str
    rule_id: str
    actions: tuple[Any, ...]
    # Only override and underride rules have conditions; None for the others.
    conditions: tuple[Condition, ...] | None = None
    # Only content rules have a pattern.
    pattern: str | None = None
    enabled: bool = True
    default: bool = False
    # Derived, for sharing one event's results across the members it is evaluated for:
    # `tests` pairs each implied condition with its canonical text, or None when it
    # depends on the rule's owner; `match_key` is the whole rule's text, None if any
    # condition depends on the owner (then the rule is tested per member).
    tests: tuple[tuple[Condition, str | None], ...] = field(default=(), init=False, compare=False, repr=False)
    match_key: str | None = field(default=None, init=False, compare=False, repr=False)
    actions_key: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        conditions = self.implied_conditions()
        tests = tuple((c, None if c.get("kind") in OWNER_DEPENDENT_KINDS else _canonical(c))
                      for c in conditions)
        shared = all(key is not None for _, key in tests)
        object.__setattr__(self, "tests", tests)
        object.__setattr__(self, "match_key", _canonical(list(conditions)) if shared else None)
        object.__setattr__(self, "actions_key", _canonical(list(self.actions)))

    def implied_conditions(self) -> tuple[Condition, ...]:
        """The conditions the rule tests, including the predefined ones of room/sender/content rules."""
        if self.kind == "room":
            return ({"kind": "event_property_is", "key": "room_id", "value": self.rule_id},)
        if self.kind == "sender":
            return ({"kind": "event_property_is", "key": "sender", "value": self.rule_id},)
        if self.kind == "content":
            return ({"kind": "event_match", "key": "content.body", "pattern": self.pattern or ""},)
        return self.conditions or ()

    def to_json(self) -> dict[str, Any]:
        """The rule as the push rules API and `m.push_rules` serve it."""
        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "default": self.default,
            "enabled": self.enabled,
            "actions": [_copy(a) for a in self.actions],
        }
        if self.kind in CONDITION_KINDS:
            out["conditions"] = [dict(c) for c in self.conditions or ()]
        if self.kind == "content":
            out["pattern"] = self.pattern or ""
        return out


_OWNER = "\x00"  # stands for the owner's ID in a shape; canonical JSON escapes a real NUL


# Condition kinds that can only hold for an owner-naming condition if the event
# itself contains the owner's ID (case-insensitively): globs without wildcards in
# the ID (a user ID has no `*` or `?`) and exact values.
_TEXT_KINDS = frozenset({"event_match", "event_property_is", "event_property_contains"})


def _shape(user_id: str, rules: Sequence[PushRule]) -> str | None:
    """The ruleset with its owner's ID abstracted away, or None if that is unsafe.

    Two rulesets of one shape (say, everyone's defaults) give an event the same
    outcome whenever the event does not contain either owner's ID: conditions
    that name the owner are then false for both. Unsafe (None): a rule with an
    owner-dependent condition, an owner-naming condition of another kind, or
    the owner's ID in a rule ID or actions (the outcome itself would name them).
    """
    enabled = [r for r in rules if r.enabled]
    if any(key is None for r in enabled for _, key in r.tests):
        return None
    tests = [(c, key) for r in enabled for c, key in r.tests]
    if any(key is not None and user_id in key and c.get("kind") not in _TEXT_KINDS for c, key in tests):
        return None
    if any(user_id in r.rule_id or user_id in r.actions_key for r in rules):
        return None
    text = _canonical([[r.kind, r.rule_id, r.enabled, r.match_key, r.actions_key] for r in rules])
    return sys.intern(text.replace(user_id, _OWNER))


def _canonical(value: Any) -> str:
    # Interned: every user's copy of a default rule has the same text, kept once.
    return sys.intern(json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr))


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def strip_historical(actions: Iterable[Any]) -> tuple[Any, ...]:
    """Actions without `dont_notify`/`coalesce`, which clients and servers must ignore."""
    return tuple(a for a in actions if not (isinstance(a, str) and a in HISTORICAL_ACTIONS))


_SOUND_DEFAULT = {"set_tweak": "sound", "value": "default"}
_HIGHLIGHT = {"set_tweak": "highlight"}

# (kind, rule_id, enabled, conditions, actions), in priority order within each kind.
_DEFAULTS: tuple[tuple[str, str, bool, tuple[dict[str, Any], ...], tuple[Any, ...]], ...] = (
    ("override", MASTER, False, (), ()),
    ("override", ".m.rule.suppress_notices", True,
     ({"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"},), ()),
    ("override", ".m.rule.invite_for_me", True,
     ({"key": "type", "kind": "event_match", "pattern": "m.room.member"},
      {"key": "content.membership", "kind": "event_match", "pattern": "invite"},
      {"key": "state_key", "kind": "event_match", "pattern": _USER}),
     ("notify", _SOUND_DEFAULT)),
    ("override", ".m.rule.member_event", True,
     ({"key": "type", "kind": "event_match", "pattern": "m.room.member"},), ()),
    ("override", ".m.rule.is_user_mention", True,
     ({"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": _USER},),
     ("notify", _SOUND_DEFAULT, _HIGHLIGHT)),
    ("override", ".m.rule.is_room_mention", True,
     ({"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
      {"kind": "sender_notification_permission", "key": "room"}),
     ("notify", _HIGHLIGHT)),
    ("override", ".m.rule.tombstone", True,
     ({"kind": "event_match", "key": "type", "pattern": "m.room.tombstone"},
      {"kind": "event_match", "key": "state_key", "pattern": ""}),
     ("notify", _HIGHLIGHT)),
    ("override", ".m.rule.reaction", True,
     ({"kind": "event_match", "key": "type", "pattern": "m.reaction"},), ()),
    ("override", ".m.rule.room.server_acl", True,
     ({"kind": "event_match", "key": "type", "pattern": "m.room.server_acl"},
      {"kind": "event_match", "key": "state_key", "pattern": ""}), ()),
    ("override", ".m.rule.suppress_edits", True,
     ({"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"},), ()),
    ("underride", ".m.rule.call", True,
     ({"key": "type", "kind": "event_match", "pattern": "m.call.invite"},),
     ("notify", {"set_tweak": "sound", "value": "ring"})),
    ("underride", ".m.rule.encrypted_room_one_to_one", True,
     ({"kind": "room_member_count", "is": "2"},
      {"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"}),
     ("notify", _SOUND_DEFAULT)),
    ("underride", ".m.rule.room_one_to_one", True,
     ({"kind": "room_member_count", "is": "2"},
      {"kind": "event_match", "key": "type", "pattern": "m.room.message"}),
     ("notify", _SOUND_DEFAULT)),
    ("underride", ".m.rule.message", True,
     ({"kind": "event_match", "key": "type", "pattern": "m.room.message"},), ("notify",)),
    ("underride", ".m.rule.encrypted", True,
     ({"kind": "event_match", "key": "type", "pattern": "m.room.encrypted"},), ("notify",)),
)

DEFAULT_RULE_KINDS: dict[str, str] = {rule_id: kind for kind, rule_id, *_ in _DEFAULTS}


def _fill(value: Any, user_id: str) -> Any:
    return user_id if value is _USER else value


def server_default_rules(user_id: str) -> list[PushRule]:
    """The server-default rules for `user_id`, in priority order within each kind."""
    return [
        PushRule(
            kind=kind,
            rule_id=rule_id,
            actions=tuple(_copy(a) for a in actions),
            conditions=tuple({k: _fill(v, user_id) for k, v in c.items()} for c in conditions),
            enabled=enabled,
            default=True,
        )
        for kind, rule_id, enabled, conditions, actions in _DEFAULTS
    ]


@dataclass(frozen=True, slots=True)
class DefaultRuleChange:
    """A user's change to a server-default rule: only `enabled` and `actions` may change."""

    enabled: bool | None = None
    actions: tuple[Any, ...] | None = None


class Ruleset:
    """One user's complete ruleset: their own rules merged with the server defaults."""

    __slots__ = ("_by_kind", "_ordered", "shape", "user_id")

    def __init__(
        self,
        user_id: str,
        user_rules: Sequence[PushRule] = (),
        default_changes: Mapping[str, DefaultRuleChange] | None = None,
    ) -> None:
        """`user_rules` in priority order within each kind (most important first)."""
        self.user_id = user_id
        changes = default_changes or {}
        defaults = []
        for rule in server_default_rules(user_id):
            change = changes.get(rule.rule_id)
            if change is not None:
                rule = replace(
                    rule,
                    enabled=rule.enabled if change.enabled is None else change.enabled,
                    actions=rule.actions if change.actions is None else change.actions,
                )
            defaults.append(rule)
        by_kind: dict[str, list[PushRule]] = {kind: [] for kind in KINDS}
        master = [r for r in defaults if r.rule_id == MASTER]
        by_kind["override"].extend(master)
        for rule in user_rules:
            by_kind[rule.kind].append(rule)
        for rule in defaults:
            if rule.rule_id != MASTER:
                by_kind[rule.kind].append(rule)
        self._by_kind = by_kind
        self._ordered = tuple(rule for kind in KINDS for rule in by_kind[kind])
        self.shape = _shape(user_id, self._ordered)

    def in_order(self) -> tuple[PushRule, ...]:
        """Every rule, in the order they are tried."""
        return self._ordered

    def kind(self, kind: str) -> list[PushRule]:
        return list(self._by_kind[kind])

    def find(self, kind: str, rule_id: str) -> PushRule | None:
        for rule in self._by_kind.get(kind, ()):
            if rule.rule_id == rule_id:
                return rule
        return None

    def __iter__(self) -> Iterator[PushRule]:
        return iter(self._ordered)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The `global` ruleset object: one list per kind."""
        return {kind: [rule.to_json() for rule in self._by_kind[kind]] for kind in KINDS}
