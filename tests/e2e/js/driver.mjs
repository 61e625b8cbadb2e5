// matrix-js-sdk under remote control, for tests/e2e/test_js_sdk.py.
//
// The test (Python) decides what happens and asserts on it; this process only
// holds real MatrixClients, each running the SDK's own sync loop, and reports
// what the SDK saw. Keeping the scenario in Python keeps every assertion next
// to the step it checks, in the same language as the rest of the suite.
//
// Line protocol: one JSON object a line.
//   stdin:  {"id": 7, "op": "call", ...arguments}
//   stdout: {"id": 7, "ok": true, "result": ...}
//        or {"id": 7, "ok": false, "error": "...", "errcode": ..., "httpStatus": ..., "data": ...}
// Every observation and every issued request gets a number from one counter
// (`seq`), so the test can check what happened before what without clocks.
// Anything the SDK prints goes to stderr; stdout carries only the protocol.

import { createInterface } from "node:readline";

// The SDK targets Node 22. Node 20 lacks Promise.withResolvers, which it calls
// in its sync loop and scheduler; Node 18 (Debian 12's nodejs) also lacks the
// global WebCrypto it draws transaction ids from. Nothing else newer is on the
// paths these tests use.
if (globalThis.crypto === undefined) {
    globalThis.crypto = (await import("node:crypto")).webcrypto;
}
if (typeof Promise.withResolvers !== "function") {
    Promise.withResolvers = function withResolvers() {
        let resolve;
        let reject;
        const promise = new this((res, rej) => {
            resolve = res;
            reject = rej;
        });
        return { promise, resolve, reject };
    };
}

// The SDK logs (verbosely) through console; send all of it to stderr, which the
// test keeps in a file and quotes when something fails. This has to happen
// before the SDK is loaded, since its logger binds the console methods.
for (const method of ["log", "info", "debug", "warn", "trace"]) {
    console[method] = (...args) => console.error(...args);
}
const sdk = await import("matrix-js-sdk");

let seq = 0;
const nextSeq = () => ++seq;

/** One SDK client and everything it has emitted so far. */
class Driven {
    constructor(client) {
        this.client = client;
        this.log = [];
        this.waiters = new Set();
    }

    record(entry) {
        entry.seq = nextSeq();
        this.log.push(entry);
        for (const waiter of [...this.waiters]) waiter(entry);
    }
}

const clients = new Map();
const rawSyncs = new Map();

function driven(name) {
    const found = clients.get(name);
    if (!found) throw new Error(`no client named ${name}`);
    return found;
}

function eventSummary(event) {
    return {
        eventId: event.getId() ?? null,
        type: event.getType(),
        sender: event.getSender() ?? null,
        stateKey: event.getStateKey() ?? null,
        content: event.getContent(),
    };
}

/** Does `value` contain everything in `pattern` (objects compared key by key)? */
function matches(value, pattern) {
    if (pattern !== null && typeof pattern === "object" && !Array.isArray(pattern)) {
        if (value === null || typeof value !== "object") return false;
        return Object.entries(pattern).every(([key, want]) => matches(value[key], want));
    }
    return JSON.stringify(value) === JSON.stringify(pattern);
}

/** Whatever an SDK method returned, as JSON: plain data as is, SDK objects by their ids. */
function jsonable(value) {
    if (value === undefined) return null;
    if (value === null || typeof value !== "object") return value;
    const proto = Object.getPrototypeOf(value);
    if (Array.isArray(value) || proto === Object.prototype || proto === null) return value;
    return { class: value.constructor?.name ?? null, roomId: value.roomId ?? null };
}

function listen(d) {
    const { client } = d;
    client.on(sdk.ClientEvent.Sync, (state, prevState, data) => {
        d.record({ kind: "sync", state, prevState: prevState ?? null, error: data?.error ? String(data.error) : null });
    });
    client.on(sdk.RoomEvent.Timeline, (event, room, toStartOfTimeline, removed, data) => {
        d.record({
            kind: "timeline", roomId: room?.roomId ?? event.getRoomId() ?? null,
            toStartOfTimeline: Boolean(toStartOfTimeline), live: Boolean(data?.liveEvent), ...eventSummary(event),
        });
    });
    // Our own sends enter the timeline as local echoes (with a temporary id); the
    // server's copy arriving through sync turns them into the real event (status null).
    client.on(sdk.RoomEvent.LocalEchoUpdated, (event, room, oldEventId) => {
        d.record({
            kind: "localEcho", roomId: room.roomId, eventId: event.getId() ?? null,
            oldEventId: oldEventId ?? null, status: event.status ?? null,
        });
    });
    client.on(sdk.RoomMemberEvent.Typing, (event, member) => {
        d.record({ kind: "typing", roomId: member.roomId, userId: member.userId, typing: member.typing });
    });
    client.on(sdk.RoomEvent.Receipt, (event, room) => {
        for (const [eventId, byType] of Object.entries(event.getContent())) {
            for (const [receiptType, byUser] of Object.entries(byType)) {
                for (const [userId, data] of Object.entries(byUser)) {
                    d.record({
                        kind: "receipt", roomId: room.roomId, eventId, receiptType, userId,
                        threadId: data?.thread_id ?? null, ts: data?.ts ?? null,
                    });
                }
            }
        }
    });
    client.on(sdk.RoomEvent.Name, (room) => {
        d.record({ kind: "name", roomId: room.roomId, name: room.name });
    });
    client.on(sdk.RoomMemberEvent.Membership, (event, member, oldMembership) => {
        d.record({
            kind: "membership", roomId: member.roomId, userId: member.userId, membership: member.membership,
            oldMembership: oldMembership ?? null, eventId: event?.getId() ?? null,
        });
    });
    client.on(sdk.RoomEvent.MyMembership, (room, membership, prevMembership) => {
        d.record({ kind: "myMembership", roomId: room.roomId, membership, prevMembership: prevMembership ?? null });
    });
    // Rooms do not re-emit their unread counts on the client; listen per room.
    client.on(sdk.ClientEvent.Room, (room) => {
        room.on(sdk.RoomEvent.UnreadNotifications, (counts, threadId) => {
            d.record({
                kind: "unread", roomId: room.roomId, threadId: threadId ?? null,
                total: room.getUnreadNotificationCount(sdk.NotificationCountType.Total),
                highlight: room.getUnreadNotificationCount(sdk.NotificationCountType.Highlight),
            });
        });
    });
}

function waitFor(d, { kind, match = {}, after = 0, timeoutMs = 60000 }) {
    const wanted = (entry) => entry.kind === kind && entry.seq > after && matches(entry, match);
    const seen = d.log.find(wanted);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
        // A guard against hanging, not a measurement: the test fails with what was seen instead.
        const timer = setTimeout(() => {
            d.waiters.delete(waiter);
            const sameKind = d.log.filter((entry) => entry.kind === kind && entry.seq > after).slice(-20);
            reject(new Error(`no ${kind} matching ${JSON.stringify(match)} after seq ${after} within ` +
                `${timeoutMs} ms; saw: ${JSON.stringify(sameKind)}`));
        }, timeoutMs);
        const waiter = (entry) => {
            if (!wanted(entry)) return;
            clearTimeout(timer);
            d.waiters.delete(waiter);
            resolve(entry);
        };
        d.waiters.add(waiter);
    });
}

function roomSnapshot(client, roomId) {
    const room = client.getRoom(roomId);
    if (!room) return null;
    return {
        roomId,
        name: room.name,
        myMembership: room.getMyMembership(),
        members: Object.fromEntries(room.currentState.getMembers().map((m) => [m.userId, m.membership])),
        unread: {
            total: room.getUnreadNotificationCount(sdk.NotificationCountType.Total),
            highlight: room.getUnreadNotificationCount(sdk.NotificationCountType.Highlight),
        },
        readUpTo: Object.fromEntries(room.currentState.getMembers().map((m) => [m.userId, room.getEventReadUpTo(m.userId)])),
        timeline: room.getLiveTimeline().getEvents().map(eventSummary),
    };
}

const ops = {
    /** A client for an existing session; nothing is sent until `start`. */
    login({ name, baseUrl, userId, accessToken, deviceId }) {
        if (clients.has(name)) throw new Error(`client ${name} exists`);
        const client = sdk.createClient({ baseUrl, userId, accessToken, deviceId });
        const d = new Driven(client);
        listen(d);
        clients.set(name, d);
        return { userId: client.getUserId(), deviceId: client.getDeviceId() };
    },

    /** `startClient` (no crypto) and wait until the first sync is processed. */
    async start({ name, opts = {}, timeoutMs = 60000 }) {
        const d = driven(name);
        const after = seq;
        await d.client.startClient({ initialSyncLimit: 20, ...opts });
        const first = await Promise.race([
            waitFor(d, { kind: "sync", match: { state: "PREPARED" }, after, timeoutMs }),
            waitFor(d, { kind: "sync", match: { state: "ERROR" }, after, timeoutMs }),
        ]);
        if (first.state !== "PREPARED") throw new Error(`first sync failed: ${first.error}`);
        return first;
    },

    /** Any MatrixClient method that takes and returns plain data. */
    async call({ name, method, args = [] }) {
        const { client } = driven(name);
        if (typeof client[method] !== "function") throw new Error(`MatrixClient has no method ${method}`);
        const issued = nextSeq();
        const value = await client[method](...args);
        return { issued, done: nextSeq(), value: jsonable(value) };
    },

    /** `sendReadReceipt` for an event the SDK already holds in that room. */
    async readReceipt({ name, roomId, eventId, receiptType }) {
        const { client } = driven(name);
        const event = client.getRoom(roomId)?.findEventById(eventId);
        if (!event) throw new Error(`${name} has no event ${eventId} in ${roomId}`);
        const issued = nextSeq();
        const value = await client.sendReadReceipt(event, receiptType);
        return { issued, done: nextSeq(), value: jsonable(value) };
    },

    waitFor({ name, ...spec }) {
        return waitFor(driven(name), spec);
    },

    log({ name, kind }) {
        return driven(name).log.filter((entry) => !kind || entry.kind === kind);
    },

    room({ name, roomId }) {
        return roomSnapshot(driven(name).client, roomId);
    },

    /** A plain `fetch` of /sync with this client's token, left running; see rawSyncResult. */
    rawSyncStart({ name, params = {} }) {
        const { client } = driven(name);
        const url = new URL(`${client.baseUrl}/_matrix/client/v3/sync`);
        for (const [key, value] of Object.entries(params)) url.searchParams.set(key, String(value));
        const handle = rawSyncs.size + 1;
        const state = { issued: nextSeq(), returned: null, outcome: null };
        state.promise = fetch(url, { headers: { Authorization: `Bearer ${client.getAccessToken()}` } })
            .then(async (response) => {
                const text = await response.text();
                let body;
                try {
                    body = JSON.parse(text);
                } catch {
                    body = text;
                }
                return { status: response.status, body };
            }, (error) => ({ status: null, body: String(error) }))
            .then((outcome) => {
                state.returned = nextSeq();
                state.outcome = outcome;
            });
        rawSyncs.set(handle, state);
        return { handle, issued: state.issued };
    },

    rawSyncPending({ handle }) {
        return { pending: rawSyncs.get(handle).returned === null, seq: nextSeq() };
    },

    async rawSyncResult({ handle, timeoutMs = 120000 }) {
        const state = rawSyncs.get(handle);
        let timer;
        const guard = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`raw /sync ${handle} still open after ${timeoutMs} ms`)),
                timeoutMs);
        });
        try {
            await Promise.race([state.promise, guard]);
        } finally {
            clearTimeout(timer);
        }
        return { issued: state.issued, returned: state.returned, ...state.outcome };
    },

    stop({ name }) {
        driven(name).client.stopClient();
        return null;
    },
};

function reply(message) {
    process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function handle(line) {
    let request;
    try {
        request = JSON.parse(line);
    } catch (error) {
        reply({ id: null, ok: false, error: `bad request line: ${error}` });
        return;
    }
    const { id, op, ...args } = request;
    try {
        if (!Object.hasOwn(ops, op)) throw new Error(`unknown op ${op}`);
        const result = await ops[op](args);
        reply({ id, ok: true, result: result ?? null });
    } catch (error) {
        reply({
            id, ok: false, error: String(error?.stack ?? error),
            errcode: error?.errcode ?? null, httpStatus: error?.httpStatus ?? null, data: error?.data ?? null,
        });
    }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
    if (line.trim()) handle(line);
});
// The test closing stdin means it is done with us: stop every sync loop and exit.
lines.on("close", () => {
    for (const { client } of clients.values()) client.stopClient();
    process.exit(0);
});
reply({ id: 0, ok: true, result: { ready: true, node: process.version } });
