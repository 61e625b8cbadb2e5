"""Throughput of the pure core on one CPU core: signing, auth checks, state resolution.

Run: ``python bench/bench_core.py`` (add ``--quick`` for a short smoke run).
Prints markdown tables. Everything runs in this one process, so each figure is
per core. Rates are the best of several timed rounds (least disturbed by other
processes); state resolution times also give the median and the CPU time,
which other load on the machine does not inflate.

(a) Events hashed+signed per second through `hearth.core.pdu.build_event` (the
    room server's path: validate, content hash, sign, event ID) and through the
    bare `add_content_hash` + `sign_event`; signatures verified per second through
    `verify_event_signatures`. Each is also given as a fraction of raw PyNaCl
    sign/verify on the very bytes that get signed, i.e. what is left after the
    unavoidable ed25519 cost.
(b) `check_auth_rules` per second on a typical ``m.room.message`` and on a
    ``m.room.member`` join to a public room.
(c) `resolve_state` on two forks of a room with 10,000 members and 200
    conflicted state keys, for room version 10 (v2) and 12 (v2.1). Fork A:
    a power levels change, 60 bans and 39 custom state events by the admin.
    Fork B: 60 members leave (20 of them banned on fork A), 39 new members join,
    a moderator sets the topic and 39 custom state events (19 of the keys also
    set on fork A).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nacl.signing
from signedjson.key import generate_signing_key
from unpaddedbase64 import decode_base64, encode_base64

from hearth.core.auth import check_auth_rules
from hearth.core.crypto import (
    VerifyKeyWithValidity,
    add_content_hash,
    key_id_of,
    redacted_signing_bytes,
    sign_event,
    verify_event_signatures,
)
from hearth.core.events import Event, StateKey
from hearth.core.pdu import build_event
from hearth.core.room_versions import V10, V12, EventFormat, RoomVersion
from hearth.core.state_res import resolve_state
from hearth.core.state_res.graph import (
    EventGraph,
    auth_difference,
    conflicted_subgraph,
    split_state_sets,
)

SERVER = "hs.example"
ADMIN = f"@admin:{SERVER}"
MOD = f"@mod:{SERVER}"


# --- timing ---------------------------------------------------------------------------


def rate(fn: Callable[[], object], seconds: float, rounds: int = 3) -> float:
    """Best calls/second of ``fn`` over ``rounds`` rounds of about ``seconds`` each."""
    batch = 1
    while True:  # find a batch size that takes ~10 ms
        start = time.perf_counter()
        for _ in range(batch):
            fn()
        if time.perf_counter() - start > 0.01:
            break
        batch *= 2
    best = 0.0
    for _ in range(rounds):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(batch):
                fn()
            calls += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, calls / (now - start))
    return best


def timings(fn: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds of ``runs`` calls (CPU time is immune to other load)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu


# --- a room built fast (no per-event state copies) ------------------------------------


class BenchRoom:
    """A room DAG with real auth_events/prev_events; events are not signed."""

    def __init__(self, rv: RoomVersion) -> None:
        self.rv = rv
        self.events: dict[str, Event] = {}
        self._ts = 1_600_000_000_000
        self.room_id = f"!bench:{SERVER}"

    def event_id(self, name: str) -> str:
        if self.rv.event_format is EventFormat.V1:
            return f"${name}:{SERVER}"
        return "$" + encode_base64(hashlib.sha256(name.encode()).digest(), urlsafe=True)

    def send(self, state: dict[StateKey, str], prev: list[str], name: str, etype: str, sender: str,
             content: dict[str, Any], state_key: str | None = None) -> str:
        """Add an event after ``prev`` with state ``state`` before it (updated in place)."""
        auth_keys: list[StateKey] = []
        if etype != "m.room.create":
            if not self.rv.room_id_from_create_event:
                auth_keys.append(("m.room.create", ""))
            auth_keys += [("m.room.power_levels", ""), ("m.room.member", sender)]
            if etype == "m.room.member" and state_key is not None:
                auth_keys.append(("m.room.member", state_key))
                if content.get("membership") in ("join", "invite", "knock"):
                    auth_keys.append(("m.room.join_rules", ""))
        auth = list(dict.fromkeys(state[k] for k in auth_keys if k in state))
        self._ts += 1
        pdu: dict[str, Any] = {
            "type": etype, "sender": sender, "content": content, "origin_server_ts": self._ts,
            "depth": max((self.events[p].depth for p in prev), default=0) + 1,
            "prev_events": prev, "auth_events": auth,
            "hashes": {"sha256": "x"}, "signatures": {},
        }
        if not (etype == "m.room.create" and self.rv.room_id_from_create_event):
            pdu["room_id"] = self.room_id
        if state_key is not None:
            pdu["state_key"] = state_key
        event_id = self.event_id(name)
        self.events[event_id] = Event(pdu, event_id, self.rv)
        if etype == "m.room.create" and self.rv.room_id_from_create_event:
            self.room_id = "!" + event_id[1:]
        if state_key is not None:
            state[(etype, state_key)] = event_id
        prev[:] = [event_id]
        return event_id


def user(i: int, prefix: str = "u") -> str:
    return f"@{prefix}{i}:s{i % 50}.example"


def power_content(rv: RoomVersion, extra: dict[str, int]) -> dict[str, Any]:
    users = {ADMIN: 100, MOD: 50, **extra}
    if rv.privileged_creators:
        users.pop(ADMIN)
    return {"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "ban": 50, "kick": 50, "redact": 50, "invite": 0}


def build_forked_room(rv: RoomVersion, members: int) -> tuple[BenchRoom, list[dict[StateKey, str]]]:
    """The (c) scenario: a room of ``members`` members and two forks (200 conflicted keys)."""
    room = BenchRoom(rv)
    state: dict[StateKey, str] = {}
    prev: list[str] = []
    create: dict[str, Any] = {"room_version": rv.identifier}
    if not rv.implicit_room_creator:
        create["creator"] = ADMIN
    room.send(state, prev, "create", "m.room.create", ADMIN, create, "")
    room.send(state, prev, "admin", "m.room.member", ADMIN, {"membership": "join"}, ADMIN)
    room.send(state, prev, "pl0", "m.room.power_levels", ADMIN, power_content(rv, {}), "")
    room.send(state, prev, "jr", "m.room.join_rules", ADMIN, {"join_rule": "public"}, "")
    room.send(state, prev, "mod", "m.room.member", MOD, {"membership": "join"}, MOD)
    for i in range(members - 2):
        room.send(state, prev, f"join{i}", "m.room.member", user(i), {"membership": "join"}, user(i))

    fork_point = list(prev)
    a_state, a_prev = dict(state), list(fork_point)
    room.send(a_state, a_prev, "a-pl", "m.room.power_levels", ADMIN,
              power_content(rv, {user(0, "x"): 10}), "")
    for i in range(60):
        room.send(a_state, a_prev, f"a-ban{i}", "m.room.member", ADMIN, {"membership": "ban"}, user(i))
    for i in range(39):
        room.send(a_state, a_prev, f"a-s{i}", "org.example.setting", ADMIN, {"v": "a"}, f"s{i}")

    b_state, b_prev = dict(state), list(fork_point)
    for i in range(40, 100):
        room.send(b_state, b_prev, f"b-leave{i}", "m.room.member", user(i), {"membership": "leave"}, user(i))
    for i in range(39):
        room.send(b_state, b_prev, f"b-join{i}", "m.room.member", user(i, "n"), {"membership": "join"},
                  user(i, "n"))
    room.send(b_state, b_prev, "b-topic", "m.room.topic", MOD, {"topic": "fork b"}, "")
    for i in range(20, 59):
        room.send(b_state, b_prev, f"b-s{i}", "org.example.setting", MOD, {"v": "b"}, f"s{i}")
    return room, [a_state, b_state]


# --- the sections ---------------------------------------------------------------------


def bench_crypto(seconds: float) -> list[tuple[str, ...]]:
    rv = V10
    signing_key = generate_signing_key("bench")
    fields: dict[str, Any] = {
        "type": "m.room.message", "room_id": f"!abcdefghijklmnop:{SERVER}", "sender": ADMIN,
        "content": {"msgtype": "m.text", "body": "Hello, this is a typical chat message of modest size."},
        "origin_server_ts": 1_700_000_000_000, "depth": 1234,
        "prev_events": ["$" + "p" * 43],
        "auth_events": ["$" + "a" * 43, "$" + "b" * 43, "$" + "c" * 43],
        "unsigned": {"age_ts": 1_700_000_000_000},
    }
    hashed = add_content_hash(fields)
    signed_bytes = redacted_signing_bytes(hashed, rv)
    raw_key = nacl.signing.SigningKey(signing_key.encode())
    raw_sign = rate(lambda: raw_key.sign(signed_bytes), seconds)

    built = rate(lambda: build_event(fields, rv, SERVER, signing_key), seconds)
    bare = rate(lambda: sign_event(add_content_hash(fields), SERVER, signing_key, rv), seconds)

    event = build_event(fields, rv, SERVER, signing_key)
    key_id = key_id_of(signing_key)
    verify_key = VerifyKeyWithValidity(signing_key.verify_key, 2**62)

    def lookup(server: str, kid: str) -> VerifyKeyWithValidity | None:
        return verify_key if (server, kid) == (SERVER, key_id) else None

    verify_event_signatures(event, rv, lookup)  # it must pass, or the figure is meaningless
    sig = decode_base64(event.pdu["signatures"][SERVER][key_id])
    msg = redacted_signing_bytes(event.pdu, rv)
    raw_verify_key = nacl.signing.VerifyKey(signing_key.verify_key.encode())
    raw_verify = rate(lambda: raw_verify_key.verify(msg, sig), seconds)
    verified = rate(lambda: verify_event_signatures(event, rv, lookup), seconds)
    return [
        ("events hashed+signed/s, `build_event` (validate, hash, sign, event ID)",
         f"{built:,.0f}", f"{built / raw_sign:.2f}"),
        ("events hashed+signed/s, `add_content_hash` + `sign_event`",
         f"{bare:,.0f}", f"{bare / raw_sign:.2f}"),
        ("raw PyNaCl sign/s on the same bytes", f"{raw_sign:,.0f}", "1.00"),
        ("signatures verified/s, `verify_event_signatures`", f"{verified:,.0f}",
         f"{verified / raw_verify:.2f}"),
        ("raw PyNaCl verify/s on the same bytes", f"{raw_verify:,.0f}", "1.00"),
    ]


def bench_auth(seconds: float) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for rv in (V10, V12):
        room = BenchRoom(rv)
        state: dict[StateKey, str] = {}
        prev: list[str] = []
        create: dict[str, Any] = {"room_version": rv.identifier}
        if not rv.implicit_room_creator:
            create["creator"] = ADMIN
        room.send(state, prev, "create", "m.room.create", ADMIN, create, "")
        room.send(state, prev, "admin", "m.room.member", ADMIN, {"membership": "join"}, ADMIN)
        room.send(state, prev, "pl", "m.room.power_levels", ADMIN,
                  power_content(rv, {user(i): 10 for i in range(20)}), "")
        room.send(state, prev, "jr", "m.room.join_rules", ADMIN, {"join_rule": "public"}, "")
        for i in range(50):
            room.send(state, prev, f"join{i}", "m.room.member", user(i), {"membership": "join"}, user(i))
        create_event = room.events[state[("m.room.create", "")]]
        msg = room.send(dict(state), list(prev), "msg", "m.room.message", user(3),
                        {"msgtype": "m.text", "body": "hi"})
        join = room.send(dict(state), list(prev), "newjoin", "m.room.member", user(999),
                         {"membership": "join"}, user(999))
        for label, eid in (("m.room.message", msg), ("m.room.member join", join)):
            event = room.events[eid]
            auth = [room.events[a] for a in event.auth_event_ids]
            if rv.room_id_from_create_event:
                auth.append(create_event)
            check_auth_rules(event, auth)
            per_s = rate(functools.partial(check_auth_rules, event, auth), seconds)
            rows.append((f"`check_auth_rules`/s, {label}, room v{rv.identifier}", f"{per_s:,.0f}"))
    return rows


def bench_state_res(members: int, runs: int) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for rv, algo in ((V10, "v2"), (V12, "v2.1")):
        room, sets = build_forked_room(rv, members)
        unconflicted, conflicted = split_state_sets(sets)
        graph = EventGraph(room.events)
        full = set().union(*conflicted.values()) | auth_difference(graph, sets, unconflicted, conflicted)
        if algo == "v2.1":
            full |= conflicted_subgraph(graph, set().union(*conflicted.values()))
        result = resolve_state(rv, sets, room.events)
        assert len(result) >= len(unconflicted)
        wall, cpu = timings(functools.partial(resolve_state, rv, sets, room.events), runs)
        rows.append((
            f"room v{rv.identifier} ({algo})", f"{len(sets[0]):,} / {len(sets[1]):,}",
            str(len(conflicted)), str(len(full)), f"{len(room.events):,}",
            f"{min(wall) * 1000:.1f}", f"{statistics.median(wall) * 1000:.1f}",
            f"{min(cpu) * 1000:.1f}",
        ))
    return rows


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="short rounds, fewer runs")
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    seconds, runs = (0.2, 3) if args.quick else (1.0, 7)

    print(f"# Hearth core benchmark\n\n{cpu_model()}, {os.cpu_count()} logical CPUs; "
          f"Python {platform.python_version()} ({platform.python_implementation()}); "
          "one process, so every figure is per core.\n")
    print("## (a) Hashing and signing (room v10, a typical m.room.message)\n")
    print(table(("measure", "per second", "fraction of raw PyNaCl"), bench_crypto(seconds)))
    print("\n## (b) Auth checks\n")
    print(table(("measure", "per second"), bench_auth(seconds)))
    print(f"\n## (c) State resolution, two forks of a {args.members:,}-member room\n")
    print(table(("algorithm", "state sets (keys)", "conflicted keys", "full conflicted set",
                 "events in map", "best ms", f"median ms of {runs}", "best CPU ms"),
                bench_state_res(args.members, runs)))


if __name__ == "__main__":
    main()
