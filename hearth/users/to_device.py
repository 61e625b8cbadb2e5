"""Sending send-to-device messages (PUT /sendToDevice/{eventType}/{txnId}).

One request is one transaction: the sender's txn id is recorded first, so a
retry (or a concurrent duplicate) finds it and queues nothing; then every
recipient device gets one inbox row at one new "to_device" stream position,
and after the commit each recipient user's long-polling syncs are woken.

Recipients: `"*"` means every device the user has now; a device named
explicitly next to `"*"` gets its own content (one message per device per
request, as the spec says). Unknown local users and devices are skipped
silently, which the spec allows. Messages for users on other servers are
dropped with a log line until federation exists.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hearth.clock import Clock
from hearth.core.ids import domain_of
from hearth.errors import bad_json, invalid_param
from hearth.notifier import Notifier
from hearth.storage.db import Database
from hearth.storage.encoding import is_encodable_json, is_storable_text
from hearth.storage.to_device import Delivery, ToDeviceStore

log = logging.getLogger(__name__)

ALL_DEVICES = "*"
MAX_TYPE_LENGTH = 255
MAX_TXN_ID_LENGTH = 255

# user ID -> device ID (or "*") -> content
Messages = Mapping[str, Mapping[str, dict[str, Any]]]


class ToDeviceService:
    def __init__(
        self, *, db: Database, store: ToDeviceStore, notifier: Notifier, clock: Clock, server_name: str
    ) -> None:
        self._db = db
        self._store = store
        self._notifier = notifier
        self._clock = clock
        self._server_name = server_name

    async def send(
        self, sender: str, sender_device: str, type_: str, txn_id: str, messages: Messages
    ) -> None:
        """Queue `messages` (user IDs already checked for form) unless `txn_id` was used."""
        if not type_ or len(type_) > MAX_TYPE_LENGTH or not is_storable_text(type_):
            raise invalid_param(f"Event type must be 1-{MAX_TYPE_LENGTH} characters")
        if not txn_id or len(txn_id) > MAX_TXN_ID_LENGTH or not is_storable_text(txn_id):
            raise invalid_param(f"Transaction ID must be 1-{MAX_TXN_ID_LENGTH} characters")
        if not is_encodable_json(messages):
            raise bad_json("Message content contains a lone surrogate, which is not valid Unicode")
        local = {u: m for u, m in messages.items() if m and domain_of(u) == self._server_name}
        remote = sorted(u for u in messages if domain_of(u) != self._server_name)
        if remote:
            log.info(
                "Dropping %s to-device messages from %s for %d remote users (no federation yet): %s",
                type_, sender, len(remote), ", ".join(remote[:10]),
            )
        woken: set[str] = set()
        async with self._db.write() as conn:
            if not await self._store.record_txn(conn, sender, sender_device, txn_id, self._clock.time_ms()):
                return
            existing = await self._store.devices_of(conn, local) if local else {}
            deliveries = [
                d for user_id, found in existing.items() for d in _deliveries(user_id, found, local[user_id])
            ]
            if deliveries:
                await self._store.add(conn, sender=sender, type_=type_, deliveries=deliveries)
                woken = {d.user_id for d in deliveries}
        for user_id in woken:
            self._notifier.notify_user(user_id)


def _deliveries(user_id: str, devices: list[str], by_device: Mapping[str, dict[str, Any]]) -> list[Delivery]:
    """One delivery per existing device the request names (explicitly or by "*")."""
    fallback = by_device.get(ALL_DEVICES)
    out: list[Delivery] = []
    for device_id in devices:
        content = by_device.get(device_id, fallback)
        if content is not None:
            out.append(Delivery(user_id, device_id, content))
    return out
