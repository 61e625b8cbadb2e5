"""Per-user push rules: reading, the CRUD the push rules API needs, and `m.push_rules`.

A user's ruleset is their own rules (rows in `push_rules`, ordered by
priority within a kind) merged with the server defaults, of which only
`enabled` and `actions` may be changed (`push_rule_defaults`). Every change
writes the whole ruleset as the user's `m.push_rules` global account data in
the same transaction, then wakes the user's syncs, so clients see it in the
`account_data` section of their next /sync.

Rulesets are cached per user (LRU): the push service needs every local
member's ruleset for every event. A write drops the user's entry after it
commits; a load that raced with a write is returned but not cached (the
version check), so the cache never keeps rules older than the database.

Decisions where the spec is silent: a PUT that updates an existing rule keeps
its enabled flag and, without before/after, its position; `before` wins when
both are given; deleting a server-default rule is 400 M_INVALID_PARAM (it can
only be disabled); a rule's `before`/`after` naming an unknown or
server-default rule is 400 M_UNKNOWN, as in the spec's example.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import Any

from hearth.errors import MatrixError, invalid_param, missing_param, not_found
from hearth.notifier import Notifier
from hearth.push.rules import (
    CONDITION_KINDS,
    DEFAULT_RULE_KINDS,
    KINDS,
    DefaultRuleChange,
    PushRule,
    Ruleset,
    strip_historical,
)
from hearth.storage.account_data import GLOBAL, AccountDataStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.encoding import is_encodable_json, is_storable_text
from hearth.storage.push import PushStore

PUSH_RULES_TYPE = "m.push_rules"
MAX_RULE_ID_LENGTH = 255
MAX_RULES_PER_KIND = 500
_MAX_SAFE_INT = 2**53 - 1
_KNOWN_ACTIONS = frozenset({"notify", "dont_notify", "coalesce"})
_COUNT = re.compile(r"(==|<=|>=|<|>)?[0-9]{1,15}")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise invalid_param(f"Unknown push rule kind {kind[:100]!r}")


def _scalar(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    return isinstance(value, int) and -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT


def parse_actions(raw: Any) -> tuple[Any, ...]:
    """A rule's actions, validated, without the historical no-op actions."""
    if not isinstance(raw, list):
        raise invalid_param("actions must be a list")
    for action in raw:
        if isinstance(action, str):
            if action not in _KNOWN_ACTIONS:
                raise invalid_param(f"Unknown action {action[:100]!r}")
        elif isinstance(action, dict):
            if not isinstance(action.get("set_tweak"), str):
                raise invalid_param("An action object must have a string set_tweak")
        else:
            raise invalid_param("Each action must be a string or an object")
    if not is_encodable_json(raw):
        raise invalid_param("actions contain a lone surrogate")
    return strip_historical(raw)


def parse_conditions(raw: Any) -> tuple[Mapping[str, Any], ...]:
    """Override/underride conditions. Unknown kinds are kept (they never match)."""
    if not isinstance(raw, list):
        raise invalid_param("conditions must be a list")
    out = []
    for cond in raw:
        if not isinstance(cond, dict) or not isinstance(cond.get("kind"), str):
            raise invalid_param("Each condition must be an object with a string kind")
        kind = cond["kind"]
        if kind in ("event_match", "event_property_is", "event_property_contains",
                    "sender_notification_permission") and not isinstance(cond.get("key"), str):
            raise invalid_param(f"A {kind} condition needs a string key")
        if kind == "event_match" and not isinstance(cond.get("pattern"), str):
            raise invalid_param("An event_match condition needs a string pattern")
        if kind in ("event_property_is", "event_property_contains") and (
            "value" not in cond or not _scalar(cond["value"])
        ):
            raise invalid_param(f"A {kind} condition needs a string, integer, boolean or null value")
        if kind == "room_member_count" and not (
            isinstance(cond.get("is"), str) and _COUNT.fullmatch(cond["is"])
        ):
            raise invalid_param("A room_member_count condition needs 'is' like '2', '<10' or '>=3'")
        out.append(cond)
    if not is_encodable_json(out):
        raise invalid_param("conditions contain a lone surrogate")
    return tuple(out)




def parse_rule(kind: str, rule_id: str, body: Mapping[str, Any]) -> PushRule:
    """A user-defined rule from a PUT body (validated; raises a Matrix error)."""
    check_kind(kind)
    if rule_id.startswith("."):
        raise invalid_param("Rule IDs starting with '.' are reserved for server-default rules")
    if "/" in rule_id or "\\" in rule_id:
        raise invalid_param("Rule IDs may not contain '/' or '\\'")
    if not rule_id or len(rule_id) > MAX_RULE_ID_LENGTH or not is_storable_text(rule_id):
        raise invalid_param(f"Rule IDs must be 1-{MAX_RULE_ID_LENGTH} characters")
    if "actions" not in body:
        raise missing_param("Missing parameter: actions")
    actions = parse_actions(body["actions"])
    conditions: tuple[Mapping[str, Any], ...] | None = None
    pattern: str | None = None
    if kind in CONDITION_KINDS:
        conditions = parse_conditions(body.get("conditions", []))
    elif kind == "content":
        if "pattern" not in body:
            raise missing_param("Missing parameter: pattern")
        if not isinstance(body["pattern"], str) or not is_storable_text(body["pattern"]):
            raise invalid_param("pattern must be a string")
        pattern = body["pattern"]
    return PushRule(kind=kind, rule_id=rule_id, actions=actions, conditions=conditions, pattern=pattern)


class PushRulesService:
    def __init__(self, *, db: Database, store: PushStore, account_data: AccountDataStore, notifier: Notifier,
                 cache_size: int = 10_000) -> None:
        self._db = db
        self._store = store
        self._account_data = account_data
        self._notifier = notifier
        self._cache: OrderedDict[str, Ruleset] = OrderedDict()
        self._cache_size = cache_size
        self._version = 0
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    # --- reading ------------------------------------------------------------------

    async def ruleset(self, user_id: str) -> Ruleset:
        cached = self._cached(user_id)
        if cached is not None:
            return cached
        async with self._db.read() as conn:
            return (await self.rulesets(conn, [user_id]))[user_id]

    async def rulesets(self, conn: DbConnection, user_ids: Collection[str]) -> dict[str, Ruleset]:
        """Rulesets for many users: cached ones at once, the others in two queries."""
        out: dict[str, Ruleset] = {}
        missing = []
        for user_id in user_ids:
            cached = self._cached(user_id)
            if cached is None:
                missing.append(user_id)
            else:
                out[user_id] = cached
        if missing:
            version = self._version
            loaded = await self._store.rules_for(conn, missing)
            for user_id, (rules, changes) in loaded.items():
                ruleset = Ruleset(user_id, rules, changes)
                out[user_id] = ruleset
                if version == self._version:
                    self._remember(user_id, ruleset)
        return out

    def _cached(self, user_id: str) -> Ruleset | None:
        ruleset = self._cache.get(user_id)
        if ruleset is not None:
            self._cache.move_to_end(user_id)
        return ruleset

    def _remember(self, user_id: str, ruleset: Ruleset) -> None:
        self._cache[user_id] = ruleset
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def get_rule(self, user_id: str, kind: str, rule_id: str) -> PushRule:
        check_kind(kind)
        rule = (await self.ruleset(user_id)).find(kind, rule_id)
        if rule is None:
            raise not_found("The push rule was not found")
        return rule

    @staticmethod
    def account_data_content(ruleset: Ruleset) -> dict[str, Any]:
        """The content of the `m.push_rules` account data event."""
        return {"global": ruleset.to_json()}

    # --- writing ------------------------------------------------------------------

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock

    async def _load_fresh(self, conn: DbConnection, user_id: str
                          ) -> tuple[list[PushRule], dict[str, DefaultRuleChange]]:
        return (await self._store.rules_for(conn, [user_id]))[user_id]

    async def _finish(self, conn: DbConnection, user_id: str) -> None:
        """Write the new ruleset as account data (inside the caller's transaction)."""
        rules, changes = await self._load_fresh(conn, user_id)
        ruleset = Ruleset(user_id, rules, changes)
        await self._account_data.put_in(conn, user_id, GLOBAL, PUSH_RULES_TYPE,
                                        self.account_data_content(ruleset))

    def _changed(self, user_id: str) -> None:
        self._version += 1
        self._cache.pop(user_id, None)
        self._notifier.notify_user(user_id)

    async def put_rule(self, user_id: str, kind: str, rule_id: str, body: Mapping[str, Any], *,
                       before: str | None = None, after: str | None = None) -> None:
        """Create or update one of the user's own rules, optionally placed relative to another."""
        rule = parse_rule(kind, rule_id, body)
        async with self._lock(user_id), self._db.write() as conn:
            rules, _ = await self._load_fresh(conn, user_id)
            same_kind = [r for r in rules if r.kind == kind]
            order = [r.rule_id for r in same_kind]
            existing = next((r for r in same_kind if r.rule_id == rule_id), None)
            if existing is not None:
                rule = replace(rule, enabled=existing.enabled)
            elif len(order) >= MAX_RULES_PER_KIND:
                raise invalid_param(f"At most {MAX_RULES_PER_KIND} {kind} rules per user")
            order = _placed(order, rule_id, before=before, after=after, existed=existing is not None)
            for position, other_id in enumerate(order):
                priority = len(order) - position
                if other_id == rule_id:
                    await self._store.put_rule(conn, user_id, rule, priority)
                else:
                    await self._store.set_priority(conn, user_id, kind, other_id, priority)
            await self._finish(conn, user_id)
        self._changed(user_id)

    async def delete_rule(self, user_id: str, kind: str, rule_id: str) -> None:
        check_kind(kind)
        if DEFAULT_RULE_KINDS.get(rule_id) == kind:
            raise invalid_param("Server-default rules cannot be deleted; disable them instead")
        async with self._lock(user_id), self._db.write() as conn:
            if not await self._store.delete_rule(conn, user_id, kind, rule_id):
                raise not_found("The push rule was not found")
            await self._finish(conn, user_id)
        self._changed(user_id)

    async def set_enabled(self, user_id: str, kind: str, rule_id: str, enabled: bool) -> None:
        await self._modify(user_id, kind, rule_id, enabled=enabled)

    async def set_actions(self, user_id: str, kind: str, rule_id: str, raw_actions: Any) -> None:
        await self._modify(user_id, kind, rule_id, actions=parse_actions(raw_actions))

    async def _modify(self, user_id: str, kind: str, rule_id: str, *, enabled: bool | None = None,
                      actions: tuple[Any, ...] | None = None) -> None:
        """Change `enabled` or `actions` of a user rule or a server-default rule."""
        check_kind(kind)
        async with self._lock(user_id), self._db.write() as conn:
            rules, changes = await self._load_fresh(conn, user_id)
            if DEFAULT_RULE_KINDS.get(rule_id) == kind:
                old = changes.get(rule_id, DefaultRuleChange())
                await self._store.put_default_change(conn, user_id, rule_id, DefaultRuleChange(
                    enabled=old.enabled if enabled is None else enabled,
                    actions=old.actions if actions is None else actions,
                ))
            else:
                position = [r.rule_id for r in rules if r.kind == kind]
                rule = next((r for r in rules if r.kind == kind and r.rule_id == rule_id), None)
                if rule is None:
                    raise not_found("The push rule was not found")
                rule = replace(rule, enabled=rule.enabled if enabled is None else enabled,
                               actions=rule.actions if actions is None else actions)
                await self._store.put_rule(conn, user_id, rule,
                                           len(position) - position.index(rule_id))
            await self._finish(conn, user_id)
        self._changed(user_id)


def _placed(order: list[str], rule_id: str, *, before: str | None, after: str | None, existed: bool
            ) -> list[str]:
    """The kind's rule IDs (most important first) with `rule_id` placed as asked."""
    others = [r for r in order if r != rule_id]
    anchor = before if before is not None else after
    if anchor is None:
        if existed:
            return order
        return [rule_id, *others]
    if anchor not in others:
        raise MatrixError(400, "M_UNKNOWN", f"before/after rule not found: {anchor[:300]}")
    index = others.index(anchor) + (0 if before is not None else 1)
    return [*others[:index], rule_id, *others[index:]]
