"""Sync filters: the typed `Filter` model and storing/fetching a user's filters.

`Filter` is the spec's filter schema (definitions/sync_filter.yaml,
room_event_filter.yaml, event_filter.yaml) as a strict `hearth.validation.Model`. It lives
here, not next to the HTTP handler, because /sync will parse the same shape
from stored filters and from inline `?filter={...}` JSON.

Strict typing: "limit": "10" or "include_leave": 1 are type errors
(M_BAD_JSON, naming the field). Values of the right type that break a rule
(limit < 1, a room ID without "!", an unknown event_format) are M_INVALID_PARAM.
Unknown keys are kept, so a newer client's filter round-trips unchanged: the
filter is stored as the client sent it, and GET returns that JSON.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from hearth.errors import bad_json, forbidden, invalid_param, not_found
from hearth.storage.encoding import dumps_storable, is_encodable_json
from hearth.storage.filters import FiltersStore
from hearth.validation import Model, ValidationError, field_validator

# filter_id is a 32-bit integer column; larger IDs were never handed out.
_MAX_FILTER_ID = 2**31 - 1
# Parsed /sync filters kept in memory: one per active client is plenty.
_SYNC_FILTER_CACHE_SIZE = 4096


class _FilterPart(Model, strict=True, extra="allow", frozen=True):
    """Frozen: parsed filters are shared between requests (FilterService.for_sync)."""


def _ids_with_sigil(values: list[str] | None, sigil: str, what: str) -> list[str] | None:
    if values is not None:
        for v in values:
            if not v.startswith(sigil):
                raise ValueError(f"{v[:100]!r} is not a {what} (must start with {sigil!r})")
    return values


class EventFilter(_FilterPart, frozen=True):
    limit: int | None = None
    types: list[str] | None = None
    not_types: list[str] | None = None
    senders: list[str] | None = None
    not_senders: list[str] | None = None

    @field_validator("limit")
    @classmethod
    def _positive_limit(cls, v: int | None) -> int | None:
        if v is not None and v < 1:
            raise ValueError("limit must be greater than 0")
        return v

    @field_validator("senders", "not_senders")
    @classmethod
    def _user_ids(cls, v: list[str] | None) -> list[str] | None:
        return _ids_with_sigil(v, "@", "user ID")


class RoomEventFilter(EventFilter, frozen=True):
    rooms: list[str] | None = None
    not_rooms: list[str] | None = None
    contains_url: bool | None = None
    lazy_load_members: bool | None = None
    include_redundant_members: bool | None = None
    unread_thread_notifications: bool | None = None

    @field_validator("rooms", "not_rooms")
    @classmethod
    def _room_ids(cls, v: list[str] | None) -> list[str] | None:
        return _ids_with_sigil(v, "!", "room ID")


class RoomFilter(_FilterPart, frozen=True):
    rooms: list[str] | None = None
    not_rooms: list[str] | None = None
    include_leave: bool | None = None
    ephemeral: RoomEventFilter | None = None
    state: RoomEventFilter | None = None
    timeline: RoomEventFilter | None = None
    account_data: RoomEventFilter | None = None

    @field_validator("rooms", "not_rooms")
    @classmethod
    def _room_ids(cls, v: list[str] | None) -> list[str] | None:
        return _ids_with_sigil(v, "!", "room ID")


class Filter(_FilterPart, frozen=True):
    event_fields: list[str] | None = None
    event_format: str | None = None
    presence: EventFilter | None = None
    account_data: EventFilter | None = None
    room: RoomFilter | None = None

    @field_validator("event_format")
    @classmethod
    def _known_format(cls, v: str | None) -> str | None:
        if v is not None and v not in ("client", "federation"):
            raise ValueError("event_format must be 'client' or 'federation'")
        return v


class FilterService:
    def __init__(self, *, store: FiltersStore) -> None:
        self._store = store
        self._parsed: OrderedDict[tuple[str, str], Filter] = OrderedDict()

    @staticmethod
    def check_owner(requester: str, user_id: str) -> None:
        if requester != user_id:
            raise forbidden("Cannot create or read filters for other users")

    async def create(self, requester: str, user_id: str, definition: dict[str, Any]) -> str:
        """Store an (already validated) filter definition; returns its filter_id."""
        self.check_owner(requester, user_id)
        if not is_encodable_json(definition):
            raise bad_json("Filter contains a lone surrogate, which is not valid Unicode")
        return str(await self._store.add(user_id, dumps_storable(definition)))

    async def get_json(self, requester: str, user_id: str, filter_id: str) -> str:
        """The stored filter JSON text, exactly as it was uploaded."""
        self.check_owner(requester, user_id)
        number = parse_filter_id(filter_id)
        raw = await self._store.get(user_id, number) if number is not None else None
        if raw is None:
            raise not_found("No such filter")
        return raw

    async def for_sync(self, user_id: str, param: str) -> Filter:
        """The filter a /sync names: a stored filter's ID or inline JSON, parsed.

        A client sends the same filter on every /sync, so the parsed model is
        remembered per (user, parameter). Stored filters never change once
        created, and only deactivation deletes them, after which the user's
        tokens no longer reach /sync.
        """
        key = (user_id, param)
        cached = self._parsed.get(key)
        if cached is not None:
            self._parsed.move_to_end(key)
            return cached
        raw = param if param.lstrip().startswith("{") else await self.get_json(user_id, user_id, param)
        try:
            parsed = Filter.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as e:
            raise invalid_param(f"Invalid filter: {e}") from None
        self._parsed[key] = parsed
        if len(self._parsed) > _SYNC_FILTER_CACHE_SIZE:
            self._parsed.popitem(last=False)
        return parsed


def parse_filter_id(filter_id: str) -> int | None:
    """The integer behind a filter_id we could have issued, else None."""
    if not filter_id.isascii() or not filter_id.isdigit() or len(filter_id) > 10:
        return None
    number = int(filter_id)
    return number if number <= _MAX_FILTER_ID else None
