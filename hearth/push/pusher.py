"""Pushers (pusher.yaml) and delivery to push gateways (push-gateway API).

POST /pushers/set creates, updates or (kind null) deletes a pusher keyed by
(user, app_id, pushkey). `http` pushers are delivered to; `email` pushers
are validated and stored but never sent: Hearth has no mailer yet, so they
only show up in GET /pushers.

Delivery: the push service hands over a `PushNotification` after the
transaction that recorded it commits. Each pusher has its own queue and at
most one task draining it, so one slow gateway delays only its own pushes and
each pusher's pushes go out in order. A failed POST (connection error,
timeout, non-2xx status) is retried with exponential backoff
(`retry_initial_ms` doubling up to `retry_max_ms`), at most `retry_attempts`
times; then that notification is dropped and the queue moves on. A pushkey
the gateway names in `rejected` loses its pusher, as the spec requires.
Queues live in memory and are bounded (`MAX_QUEUE`, oldest dropped): a
restart loses undelivered pushes, which only ever notify about events a sync
shows anyway.

Gateways are addressed by the URL a client gave us, so by default addresses in
private and loopback ranges are refused (`push.gateway_ip_blocklist`), both
as IP literals and as what a host name resolves to.

Pushkeys and gateway URLs are credentials of a sort: logs name a pusher by
its id and app_id only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from hearth.clock import Clock
from hearth.config import PushConfig
from hearth.errors import invalid_param, missing_param
from hearth.storage.db import Database
from hearth.storage.encoding import is_encodable_json, is_storable_text
from hearth.storage.push import PusherRow, PushStore

log = logging.getLogger(__name__)

NOTIFY_PATH = "/_matrix/push/v1/notify"
KINDS = ("http", "email")
EMAIL_APP_ID = "m.email"
MAX_APP_ID_LENGTH = 64
MAX_PUSHKEY_BYTES = 512
MAX_QUEUE = 100

Sleep = Callable[[float], Awaitable[None]]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class PushNotification:
    """One push about an event (or, with `event_id` None, a badge count update) for one user."""

    user_id: str
    unread: int
    event_id: str | None = None
    room_id: str | None = None
    type: str | None = None
    sender: str | None = None
    content: Mapping[str, Any] | None = None
    sender_display_name: str | None = None
    room_name: str | None = None
    user_is_target: bool = False
    tweaks: dict[str, Any] = field(default_factory=dict)
    prio: str = "high"


def pusher_json(row: PusherRow) -> dict[str, Any]:
    """A pusher as GET /pushers shows it."""
    out: dict[str, Any] = {
        "pushkey": row.pushkey,
        "kind": row.kind,
        "app_id": row.app_id,
        "app_display_name": row.app_display_name,
        "device_display_name": row.device_display_name,
        "lang": row.lang,
        "data": row.data,
    }
    if row.profile_tag is not None:
        out["profile_tag"] = row.profile_tag
    return out


def _string(body: Mapping[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise missing_param(f"Missing parameter: {name}")
        return None
    if not isinstance(value, str) or not is_storable_text(value):
        raise invalid_param(f"{name} must be a string")
    return value


def check_gateway_url(url: str) -> None:
    """An http(s) URL with a host whose path is exactly /_matrix/push/v1/notify."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise invalid_param("data.url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise invalid_param("data.url must be an http or https URL")
    if parts.path != NOTIFY_PATH:
        raise invalid_param(f"data.url must have the path {NOTIFY_PATH}")


def parse_networks(ranges: list[str]) -> list[IpNetwork]:
    return [ipaddress.ip_network(r, strict=False) for r in ranges]


def _blocked(address: str, networks: list[IpNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == n.version and ip in n for n in networks)


class _FilteringResolver(AbstractResolver):
    """DNS answers minus blocked addresses: a gateway host cannot point us at our own network."""

    def __init__(self, networks: list[IpNetwork]) -> None:
        self._inner = DefaultResolver()
        self._networks = networks

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if not _blocked(r["host"], self._networks)]
        if not allowed:
            raise OSError(f"{host} resolves only to blocked addresses")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class PusherService:
    def __init__(self, *, db: Database, store: PushStore, config: PushConfig, clock: Clock,
                 sleep: Sleep = asyncio.sleep) -> None:
        self._db = db
        self._store = store
        self._config = config
        self._clock = clock
        # How backoff waits; tests swap in one that does not wait for the wall clock.
        self.sleep = sleep
        self._networks = parse_networks(config.gateway_ip_blocklist)
        self._by_user: dict[str, list[PusherRow]] | None = None
        self._load_lock = asyncio.Lock()
        self._queues: dict[int, deque[PushNotification]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._starts = 0

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Begin delivering (idempotent: each start needs a stop)."""
        self._starts += 1
        if self._starts > 1:
            return
        connector = aiohttp.TCPConnector(resolver=_FilteringResolver(self._networks), limit=100)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._config.request_timeout_s),
            headers={"User-Agent": "Hearth"},
        )
        await self.ensure_loaded()
        for pusher_id, queue in self._queues.items():
            if queue:
                self._spawn(pusher_id)

    async def stop(self) -> None:
        self._starts = max(0, self._starts - 1)
        if self._starts:
            return
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- pushers --------------------------------------------------------------------

    async def ensure_loaded(self) -> None:
        """Load every pusher once; afterwards the in-memory map is kept in step with writes."""
        if self._by_user is not None:
            return
        async with self._load_lock:
            if self._by_user is not None:
                return
            async with self._db.read() as conn:
                rows = await self._store.all_pushers(conn)
            by_user: dict[str, list[PusherRow]] = {}
            for row in rows:
                by_user.setdefault(row.user_id, []).append(row)
            self._by_user = by_user

    def has_http_pushers(self, user_id: str) -> bool:
        """Whether pushes for the user go anywhere (call `ensure_loaded` first)."""
        rows = (self._by_user or {}).get(user_id, ())
        return any(r.kind == "http" for r in rows)

    async def pushers_of(self, user_id: str) -> list[dict[str, Any]]:
        async with self._db.read() as conn:
            rows = await self._store.pushers_of(conn, user_id)
        return [pusher_json(r) for r in rows]

    async def set(self, user_id: str, device_id: str | None, body: Mapping[str, Any]) -> None:
        """POST /pushers/set: validate, then create, update or delete."""
        if "kind" not in body:
            raise missing_param("Missing parameter: kind")
        kind = body["kind"]
        app_id = _string(body, "app_id", required=True)
        pushkey = _string(body, "pushkey", required=True)
        assert app_id is not None and pushkey is not None
        if not app_id or len(app_id) > MAX_APP_ID_LENGTH:
            raise invalid_param(f"app_id must be 1-{MAX_APP_ID_LENGTH} characters")
        if not pushkey or len(pushkey.encode()) > MAX_PUSHKEY_BYTES:
            raise invalid_param(f"pushkey must be 1-{MAX_PUSHKEY_BYTES} bytes")
        await self.ensure_loaded()
        if kind is None:
            async with self._db.write() as conn:
                await self._store.delete_pusher(conn, user_id, app_id, pushkey)
            self._forget(user_id, app_id, pushkey)
            return
        if not isinstance(kind, str) or kind not in KINDS:
            raise invalid_param("kind must be 'http', 'email' or null")
        missing = [n for n in ("app_display_name", "device_display_name", "lang", "data") if n not in body
                   or body[n] is None]
        if missing:
            raise missing_param(f"Missing parameters: {', '.join(missing)}")
        app_name = _string(body, "app_display_name", required=True)
        device_name = _string(body, "device_display_name", required=True)
        lang = _string(body, "lang", required=True)
        profile_tag = _string(body, "profile_tag", required=False)
        data = body["data"]
        if not isinstance(data, dict):
            raise invalid_param("data must be an object")
        if not is_encodable_json(data):
            raise invalid_param("data contains a lone surrogate")
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise invalid_param("append must be a boolean")
        if kind == "http":
            url = data.get("url")
            if url is None:
                raise missing_param("Missing parameter: data.url")
            if not isinstance(url, str):
                raise invalid_param("data.url must be a string")
            check_gateway_url(url)
            if "format" in data and data["format"] != "event_id_only":
                raise invalid_param("data.format must be 'event_id_only' if given")
        else:
            if app_id != EMAIL_APP_ID:
                raise invalid_param(f"Email pushers must have app_id {EMAIL_APP_ID}")
            local, at, domain = pushkey.rpartition("@")
            if not at or not local or not domain:
                raise invalid_param("The pushkey of an email pusher must be an email address")
        assert app_name is not None and device_name is not None and lang is not None
        row = PusherRow(
            pusher_id=0, user_id=user_id, kind=kind, app_id=app_id, pushkey=pushkey,
            pushkey_ts=self._clock.time_ms(), lang=lang, data=data, app_display_name=app_name,
            device_display_name=device_name, profile_tag=profile_tag, device_id=device_id,
        )
        async with self._db.write() as conn:
            await self._store.upsert_pusher(conn, row)
            others = [] if append else await self._store.delete_pushers_of_others(
                conn, user_id, app_id, pushkey)
            stored = await self._store.pushers_of(conn, user_id)
        for other in others:
            self._forget(other, app_id, pushkey)
        assert self._by_user is not None
        self._by_user[user_id] = stored

    async def delete_all(self, user_id: str) -> None:
        """Remove every pusher of a user (account deactivation), stored and in memory."""
        await self.ensure_loaded()
        async with self._db.write() as conn:
            await self._store.delete_all_pushers(conn, user_id)
        assert self._by_user is not None
        for row in self._by_user.pop(user_id, ()):
            # A delivery in progress finds its pusher gone and stops.
            self._queues.pop(row.pusher_id, None)

    async def deactivated_owners(self) -> list[str]:
        """Deactivated accounts that still have pushers (a deactivation cut short by a crash)."""
        async with self._db.read() as conn:
            return await self._store.deactivated_pusher_owners(conn)

    def _forget(self, user_id: str, app_id: str, pushkey: str) -> None:
        rows = (self._by_user or {}).get(user_id)
        if not rows:
            return
        gone = [r for r in rows if r.app_id == app_id and r.pushkey == pushkey]
        kept = [r for r in rows if not (r.app_id == app_id and r.pushkey == pushkey)]
        assert self._by_user is not None
        if kept:
            self._by_user[user_id] = kept
        else:
            del self._by_user[user_id]
        for row in gone:
            self._queues.pop(row.pusher_id, None)

    def _pusher(self, pusher_id: int) -> PusherRow | None:
        for rows in (self._by_user or {}).values():
            for row in rows:
                if row.pusher_id == pusher_id:
                    return row
        return None

    # --- delivery -------------------------------------------------------------------

    def enqueue(self, notification: PushNotification) -> None:
        """Queue a push to each of the user's HTTP pushers (after the commit that recorded it)."""
        for row in (self._by_user or {}).get(notification.user_id, ()):
            if row.kind != "http":
                continue
            queue = self._queues.get(row.pusher_id)
            if queue is None:
                queue = self._queues[row.pusher_id] = deque(maxlen=MAX_QUEUE)
            queue.append(notification)
            if self._session is not None:
                self._spawn(row.pusher_id)

    def _spawn(self, pusher_id: int) -> None:
        running = self._tasks.get(pusher_id)
        if running is not None and not running.done():
            return
        task = asyncio.get_running_loop().create_task(self._drain(pusher_id))
        self._tasks[pusher_id] = task

        def finished(done: asyncio.Task[None]) -> None:
            if self._tasks.get(pusher_id) is done:
                del self._tasks[pusher_id]

        task.add_done_callback(finished)

    async def _drain(self, pusher_id: int) -> None:
        """Send one pusher's queue in order, retrying each push with backoff."""
        while True:
            queue = self._queues.get(pusher_id)
            row = self._pusher(pusher_id)
            if row is None:
                self._queues.pop(pusher_id, None)
                return
            if not queue:
                return
            notification = queue[0]
            delay_ms = self._config.retry_initial_ms
            for attempt in range(1, self._config.retry_attempts + 1):
                try:
                    rejected = await self._post(row, notification)
                except Exception as e:  # any failure is retried the same way
                    if attempt == self._config.retry_attempts:
                        log.warning("Push to pusher %d (%s) failed %d times, dropping it: %s",
                                    row.pusher_id, row.app_id, attempt, type(e).__name__)
                        break
                    log.info("Push to pusher %d (%s) failed (%s); retrying in %d ms",
                             row.pusher_id, row.app_id, type(e).__name__, delay_ms)
                    await self.sleep(delay_ms / 1000)
                    delay_ms = min(delay_ms * 2, self._config.retry_max_ms)
                    continue
                if row.pushkey in rejected:
                    await self._reject(row)
                    return
                break
            if queue and queue[0] is notification:
                queue.popleft()

    async def _reject(self, row: PusherRow) -> None:
        log.info("Gateway rejected the pushkey of pusher %d (%s); removing it", row.pusher_id, row.app_id)
        async with self._db.write() as conn:
            await self._store.delete_pusher(conn, row.user_id, row.app_id, row.pushkey)
        self._forget(row.user_id, row.app_id, row.pushkey)

    async def _post(self, row: PusherRow, notification: PushNotification) -> list[str]:
        """POST one notification; returns the rejected pushkeys, raises on failure."""
        session = self._session
        if session is None:
            raise RuntimeError("pusher delivery is stopped")
        url = str(row.data.get("url", ""))
        host = urlsplit(url).hostname or ""
        if _blocked(host, self._networks):
            raise OSError("gateway address is blocked")
        body = {"notification": self.payload(row, notification)}
        async with session.post(url, json=body) as resp:
            if resp.status // 100 != 2:
                raise aiohttp.ClientResponseError(resp.request_info, resp.history, status=resp.status)
            try:
                answer = await resp.json(content_type=None)
            except ValueError:
                return []
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        return [k for k in rejected if isinstance(k, str)] if isinstance(rejected, list) else []

    def payload(self, row: PusherRow, n: PushNotification) -> dict[str, Any]:
        """The `notification` object of a /notify request for one pusher."""
        device: dict[str, Any] = {
            "app_id": row.app_id,
            "pushkey": row.pushkey,
            "pushkey_ts": row.pushkey_ts // 1000,
            "data": {k: v for k, v in row.data.items() if k != "url"},
        }
        counts = {"unread": n.unread} if n.unread else {}
        if n.event_id is None:
            return {"counts": counts, "devices": [device]}
        device["tweaks"] = dict(n.tweaks)
        out: dict[str, Any] = {
            "event_id": n.event_id,
            "room_id": n.room_id,
            "counts": counts,
            "devices": [device],
            "prio": n.prio,
        }
        if row.data.get("format") == "event_id_only":
            return out
        out["type"] = n.type
        out["sender"] = n.sender
        if n.sender_display_name:
            out["sender_display_name"] = n.sender_display_name
        if n.room_name:
            out["room_name"] = n.room_name
        if n.type == "m.room.member":
            out["user_is_target"] = n.user_is_target
        if self._config.include_content and n.content:
            out["content"] = dict(n.content)
        return out
