"""A user's devices: listing, renaming, deleting, and when each was last used.

Deleting goes through `SessionService.delete_devices`, which also evicts the
devices' tokens from the in-memory token cache, so a deleted device's token
stops working on the very next request.

Last-seen tracking: every authenticated request calls `note_seen`, so it must
cost next to nothing. The service remembers in memory when it last wrote each
device's `last_seen_ts` and writes again only after `SEEN_WRITE_INTERVAL_MS`
(or when the device's address changes, at most once a minute), so an active
device costs one small UPDATE every few minutes, not one per request. The
stored value is therefore up to that interval stale, which is all clients
show it for ("last active 3 minutes ago").
"""

from __future__ import annotations

from hearth.clock import Clock
from hearth.errors import invalid_param, not_found
from hearth.storage.devices import Device, DevicesStore
from hearth.storage.encoding import is_storable_text
from hearth.users.sessions import SessionService

SEEN_WRITE_INTERVAL_MS = 5 * 60 * 1000
_ADDRESS_CHANGE_INTERVAL_MS = 60 * 1000
MAX_DEVICE_NAME_LENGTH = 256
_SEEN_CACHE_SIZE = 100_000


class DeviceService:
    def __init__(self, *, devices: DevicesStore, sessions: SessionService, clock: Clock) -> None:
        self._devices = devices
        self._sessions = sessions
        self._clock = clock
        # (user_id, device_id) -> (ts, ip) of the last write to the database.
        self._written: dict[tuple[str, str], tuple[int, str | None]] = {}

    async def list_devices(self, user_id: str) -> list[Device]:
        return await self._devices.list_for_user(user_id)

    async def get(self, user_id: str, device_id: str) -> Device:
        device = await self._devices.get(user_id, device_id)
        if device is None:
            raise not_found("Unknown device")
        return device

    async def rename(self, user_id: str, device_id: str, display_name: str | None) -> None:
        """Change a device's display name; `None` leaves it as it is (but the device must exist)."""
        if display_name is None:
            await self.get(user_id, device_id)
            return
        if len(display_name) > MAX_DEVICE_NAME_LENGTH:
            raise invalid_param(f"display_name is longer than {MAX_DEVICE_NAME_LENGTH} characters")
        if not is_storable_text(display_name):
            raise invalid_param("display_name must not contain NUL or lone surrogates")
        if not await self._devices.rename(user_id, device_id, display_name):
            raise not_found("Unknown device")

    async def delete(self, user_id: str, device_ids: list[str]) -> None:
        """Delete devices and kill their tokens at once; unknown IDs are ignored."""
        unique = list(dict.fromkeys(device_ids))
        await self._sessions.delete_devices(user_id, unique)
        for device_id in unique:
            self._written.pop((user_id, device_id), None)

    async def note_seen(self, user_id: str, device_id: str, ip: str | None) -> None:
        """Record that a device made a request; writes only when the stored value is stale."""
        now = self._clock.time_ms()
        key = (user_id, device_id)
        last = self._written.get(key)
        if last is not None:
            elapsed = now - last[0]
            if elapsed < SEEN_WRITE_INTERVAL_MS and (last[1] == ip or elapsed < _ADDRESS_CHANGE_INTERVAL_MS):
                return
        if len(self._written) >= _SEEN_CACHE_SIZE and key not in self._written:
            self._written.clear()
        self._written[key] = (now, ip)
        await self._devices.record_seen(user_id, device_id, now, ip)
