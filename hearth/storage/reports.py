"""Reports of events, rooms and users that clients send for the server's admins."""

from __future__ import annotations

from sqlalchemy import insert

from hearth.storage.db import Database
from hearth.storage.tables import content_reports


class ReportsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        kind: str,
        reporter: str,
        received_ts: int,
        reason: str | None,
        room_id: str | None = None,
        event_id: str | None = None,
        target_user_id: str | None = None,
    ) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                insert(content_reports).values(
                    kind=kind,
                    reporter=reporter,
                    room_id=room_id,
                    event_id=event_id,
                    target_user_id=target_user_id,
                    reason=reason,
                    received_ts=received_ts,
                )
            )
