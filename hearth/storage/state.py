"""State snapshots and (type, state_key) ids.

A snapshot is an immutable map state_key_nid -> event_nid. It is stored either
in full (no parent) or as the entries that differ from its parent; chains are
capped at `MAX_CHAIN` deltas, after which a full snapshot is written, so loading
one reads a bounded number of small rows. Loaded snapshots are immutable, so a
small LRU cache keeps the hot ones.

A snapshot's hash identifies how it was derived (full entries, or parent hash
plus delta); identical derivations share one row.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import and_, insert, select, tuple_

from hearth.core.events import StateKey
from hearth.storage import dialect
from hearth.storage.db import Database, DbConnection
from hearth.storage.tables import current_state, state_keys, state_snapshot_entries, state_snapshots

MAX_CHAIN = 32
StateNids = dict[int, int]  # state_key_nid -> event_nid


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    snapshot_nid: int
    hash: bytes
    chain_length: int


def _entries_hash(prefix: bytes, entries: Mapping[int, int]) -> bytes:
    h = hashlib.sha256(prefix)
    for key in sorted(entries):
        h.update(struct.pack(">qq", key, entries[key]))
    return h.digest()


class StateStore:
    _CACHE_SIZE = 256

    def __init__(self, db: Database) -> None:
        self._db = db
        self._key_nids: dict[StateKey, int] = {}
        self._keys_by_nid: dict[int, StateKey] = {}
        self._snapshots: OrderedDict[int, StateNids] = OrderedDict()

    def forget_cached(self) -> None:
        """Drop every cached id and snapshot.

        Called when a write transaction fails: ids and snapshots it created were
        rolled back, and their numbers may be handed out again.
        """
        self._key_nids.clear()
        self._keys_by_nid.clear()
        self._snapshots.clear()

    # --- (type, state_key) ids -------------------------------------------

    async def key_nids(
        self, conn: DbConnection, keys: Iterable[StateKey], *, create: bool
    ) -> dict[StateKey, int]:
        """Ids for state keys; with `create`, missing ones are made."""
        wanted = set(keys)
        missing = [k for k in wanted if k not in self._key_nids]
        if missing:
            await self._load_key_nids(conn, missing)
            missing = [k for k in missing if k not in self._key_nids]
            if missing and create:
                for etype, skey in missing:
                    await conn.execute(
                        dialect.insert_ignore(
                            conn, state_keys, {"type": etype, "state_key": skey}, ["type", "state_key"]
                        )
                    )
                await self._load_key_nids(conn, missing)
        return {k: self._key_nids[k] for k in wanted if k in self._key_nids}

    async def _load_key_nids(self, conn: DbConnection, keys: list[StateKey]) -> None:
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = await conn.execute(
                select(state_keys.c.state_key_nid, state_keys.c.type, state_keys.c.state_key).where(
                    tuple_(state_keys.c.type, state_keys.c.state_key).in_(chunk)
                )
            )
            for nid, etype, skey in rows:
                self._remember_key(nid, (etype, skey))

    def _remember_key(self, nid: int, key: StateKey) -> None:
        self._key_nids[key] = nid
        self._keys_by_nid[nid] = key

    async def keys_for_nids(self, conn: DbConnection, nids: Iterable[int]) -> dict[int, StateKey]:
        wanted = set(nids)
        missing = [n for n in wanted if n not in self._keys_by_nid]
        for i in range(0, len(missing), 500):
            rows = await conn.execute(
                select(state_keys.c.state_key_nid, state_keys.c.type, state_keys.c.state_key).where(
                    state_keys.c.state_key_nid.in_(missing[i : i + 500])
                )
            )
            for nid, etype, skey in rows:
                self._remember_key(nid, (etype, skey))
        return {n: self._keys_by_nid[n] for n in wanted}

    # --- snapshots -------------------------------------------------------

    async def snapshot_info(self, conn: DbConnection, snapshot_nid: int) -> SnapshotInfo:
        row = (
            await conn.execute(
                select(state_snapshots.c.hash, state_snapshots.c.chain_length).where(
                    state_snapshots.c.snapshot_nid == snapshot_nid
                )
            )
        ).one()
        return SnapshotInfo(snapshot_nid, row[0], row[1])

    async def load(self, conn: DbConnection, snapshot_nid: int) -> StateNids:
        """The full map of a snapshot (a copy the caller may change)."""
        cached = self._snapshots.get(snapshot_nid)
        if cached is not None:
            self._snapshots.move_to_end(snapshot_nid)
            return dict(cached)
        chain: list[int] = []
        nid: int | None = snapshot_nid
        base: StateNids = {}
        while nid is not None:
            hit = self._snapshots.get(nid)
            if hit is not None:
                base = dict(hit)
                break
            chain.append(nid)
            nid = (
                await conn.execute(
                    select(state_snapshots.c.parent_snapshot_nid).where(state_snapshots.c.snapshot_nid == nid)
                )
            ).scalar_one()
        if chain:
            rows = await conn.execute(
                select(
                    state_snapshot_entries.c.snapshot_nid,
                    state_snapshot_entries.c.state_key_nid,
                    state_snapshot_entries.c.event_nid,
                ).where(state_snapshot_entries.c.snapshot_nid.in_(chain))
            )
            layers: dict[int, list[tuple[int, int]]] = {n: [] for n in chain}
            for snap, key, ev in rows:
                layers[snap].append((key, ev))
            for snap in reversed(chain):  # root first, newest delta last
                base.update(layers[snap])
        self._cache(snapshot_nid, base)
        return dict(base)

    def _cache(self, snapshot_nid: int, state: StateNids) -> None:
        self._snapshots[snapshot_nid] = dict(state)
        if len(self._snapshots) > self._CACHE_SIZE:
            self._snapshots.popitem(last=False)

    async def store_full(
        self, conn: DbConnection, room_nid: int, state: Mapping[int, int]
    ) -> SnapshotInfo:
        digest = _entries_hash(b"full", state)
        existing = await self._by_hash(conn, digest)
        if existing is not None:
            return existing
        nid = (
            await conn.execute(
                insert(state_snapshots)
                .values(
                    room_nid=room_nid,
                    hash=digest,
                    parent_snapshot_nid=None,
                    chain_length=0,
                )
                .returning(state_snapshots.c.snapshot_nid)
            )
        ).scalar_one()
        await self._insert_entries(conn, nid, state)
        self._cache(nid, dict(state))
        return SnapshotInfo(nid, digest, 0)

    async def store_delta(
        self, conn: DbConnection, room_nid: int, parent: SnapshotInfo, changes: Mapping[int, int]
    ) -> SnapshotInfo:
        """A snapshot equal to `parent` with `changes` applied."""
        if not changes:
            return parent
        if parent.chain_length + 1 > MAX_CHAIN:
            full = await self.load(conn, parent.snapshot_nid)
            full.update(changes)
            return await self.store_full(conn, room_nid, full)
        digest = _entries_hash(parent.hash, changes)
        existing = await self._by_hash(conn, digest)
        if existing is not None:
            return existing
        nid = (
            await conn.execute(
                insert(state_snapshots)
                .values(
                    room_nid=room_nid,
                    hash=digest,
                    parent_snapshot_nid=parent.snapshot_nid,
                    chain_length=parent.chain_length + 1,
                )
                .returning(state_snapshots.c.snapshot_nid)
            )
        ).scalar_one()
        await self._insert_entries(conn, nid, changes)
        cached_parent = self._snapshots.get(parent.snapshot_nid)
        if cached_parent is not None:
            self._cache(nid, {**cached_parent, **changes})
        return SnapshotInfo(nid, digest, parent.chain_length + 1)

    async def _by_hash(self, conn: DbConnection, digest: bytes) -> SnapshotInfo | None:
        row = (
            await conn.execute(
                select(state_snapshots.c.snapshot_nid, state_snapshots.c.chain_length).where(
                    state_snapshots.c.hash == digest
                )
            )
        ).first()
        return SnapshotInfo(row[0], digest, row[1]) if row else None

    async def _insert_entries(self, conn: DbConnection, nid: int, entries: Mapping[int, int]) -> None:
        if entries:
            await conn.execute(
                insert(state_snapshot_entries),
                [{"snapshot_nid": nid, "state_key_nid": k, "event_nid": v} for k, v in entries.items()],
            )

    # --- current state ---------------------------------------------------

    async def current_event_nids(
        self, conn: DbConnection, room_nid: int, key_nids: Iterable[int] | None = None
    ) -> StateNids:
        """The room's current state, or just the given keys of it."""
        stmt = select(current_state.c.state_key_nid, current_state.c.event_nid).where(
            current_state.c.room_nid == room_nid
        )
        if key_nids is not None:
            stmt = stmt.where(current_state.c.state_key_nid.in_(list(key_nids)))
        return {k: e for k, e in await conn.execute(stmt)}

    async def apply_current_delta(
        self, conn: DbConnection, room_nid: int, changes: Mapping[int, int], removed: Iterable[int] = ()
    ) -> None:
        for key_nid, event_nid in changes.items():
            await conn.execute(
                dialect.upsert(
                    conn,
                    current_state,
                    {
                        "room_nid": room_nid,
                        "state_key_nid": key_nid,
                        "event_nid": event_nid,
                    },
                    ["room_nid", "state_key_nid"],
                )
            )
        removed = list(removed)
        if removed:
            await conn.execute(
                current_state.delete().where(
                    and_(current_state.c.room_nid == room_nid, current_state.c.state_key_nid.in_(removed))
                )
            )

    async def read_snapshot(self, snapshot_nid: int) -> StateNids:
        async with self._db.read() as conn:
            return await self.load(conn, snapshot_nid)
