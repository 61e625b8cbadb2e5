"""The schema, once, for both engines (SQLAlchemy Core).

Queries are built from these `Table` objects. The Alembic revisions in
`migrations/versions/` create the same tables; `tests/storage/test_migrations.py`
checks that the two never drift apart.

Conventions: times are integer milliseconds since the epoch (`*_ts`), JSON is
stored as canonical text, booleans are real booleans, and secrets are stored
only as SHA-256 hashes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# Monotonic counters for the event streams that sync tokens are made of
# (account_data, device_lists, ...). One row per stream.
stream_counters = Table(
    "stream_counters",
    metadata,
    Column("stream", Text, primary_key=True),
    Column("position", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("password_hash", Text, nullable=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("is_guest", Boolean, nullable=False, default=False),
    Column("deactivated", Boolean, nullable=False, default=False),
    # Deactivated with `erase`: later joiners of the user's rooms get their
    # events redacted (account_deactivation.yaml).
    Column("erased", Boolean, nullable=False, default=False, server_default=false()),
)

profiles = Table(
    "profiles",
    metadata,
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("displayname", Text, nullable=True),
    Column("avatar_url", Text, nullable=True),
)

devices = Table(
    "devices",
    metadata,
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("display_name", Text, nullable=True),
    Column("created_ts", BigInteger, nullable=False),
    Column("last_seen_ts", BigInteger, nullable=True),
    Column("last_seen_ip", Text, nullable=True),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("user_id", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["user_id", "device_id"], ["devices.user_id", "devices.device_id"], ondelete="CASCADE"
    ),
)

# Deleting a device deletes its tokens (the FK cascades), which is what logging
# a device out means.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("user_id", Text, nullable=False),
    Column("device_id", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    # Only tokens issued together with a refresh token expire.
    Column("expires_ts", BigInteger, nullable=True),
    Column("refresh_token_id", Integer, ForeignKey("refresh_tokens.id", ondelete="CASCADE"), nullable=True),
    ForeignKeyConstraint(
        ["user_id", "device_id"], ["devices.user_id", "devices.device_id"], ondelete="CASCADE"
    ),
)

# Global account data has room_id "" (primary key columns cannot be NULL).
account_data = Table(
    "account_data",
    metadata,
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("room_id", Text, primary_key=True),
    Column("type", Text, primary_key=True),
    Column("content", Text, nullable=False),
    Column("stream_id", BigInteger, nullable=False),
    Index("account_data_stream", "user_id", "stream_id"),
)

filters = Table(
    "filters",
    metadata,
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("filter_id", Integer, primary_key=True),
    Column("filter_json", Text, nullable=False),
)

registration_tokens = Table(
    "registration_tokens",
    metadata,
    Column("token", Text, primary_key=True),
    Column("uses_allowed", Integer, nullable=True),
    # Uses by registrations still in their UIA flow, and finished ones.
    Column("pending", Integer, nullable=False, default=0),
    Column("completed", Integer, nullable=False, default=0),
    Column("expiry_ts", BigInteger, nullable=True),
)

# User-interactive auth sessions: which stages a client has completed for one
# request. Kept in the database so a restart mid-flow does not lose them.
uia_sessions = Table(
    "uia_sessions",
    metadata,
    Column("session_id", Text, primary_key=True),
    Column("created_ts", BigInteger, nullable=False),
    # What the session authorises, e.g. "register" or "delete_device:@u:hs:DEV".
    Column("purpose", Text, nullable=False),
    Column("completed_stages", Text, nullable=False),
    # Stage-specific data, e.g. the registration token being used (JSON).
    Column("data", Text, nullable=False),
)

# --- rooms and events ------------------------------------------------------
#
# Integer ids ("nids") stand for rooms, events and (type, state_key) pairs so
# that state maps and snapshots are small rows of integers. Events are stored
# once, as canonical PDU JSON plus the indexed columns queries need.

rooms = Table(
    "rooms",
    metadata,
    Column("room_nid", Integer, primary_key=True, autoincrement=True),
    Column("room_id", Text, nullable=False, unique=True),
    Column("room_version", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    # Listed in the public room directory.
    Column("is_public", Boolean, nullable=False, default=False),
    # The snapshot that current_state materialises (state at the extremities).
    Column("current_snapshot_nid", Integer, nullable=True),
    # /publicRooms reads the published rooms without scanning every room.
    Index("rooms_public", "is_public"),
)

events = Table(
    "events",
    metadata,
    Column("event_nid", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), nullable=False),
    Column("type", Text, nullable=False),
    Column("state_key", Text, nullable=True),  # NULL for non-state events
    Column("sender", Text, nullable=False),
    Column("depth", BigInteger, nullable=False),
    Column("origin_server_ts", BigInteger, nullable=False),
    # Global insert order; NULL for outliers (events known but not in the timeline),
    # negative for backfilled history.
    Column("stream_ordering", BigInteger, nullable=True, unique=True),
    Column("json", Text, nullable=False),
    # State snapshots before and after the event (NULL for outliers).
    Column("state_before_nid", Integer, nullable=True),
    Column("state_after_nid", Integer, nullable=True),
    Column("rejected_reason", Text, nullable=True),
    Column("outlier", Boolean, nullable=False, default=False),
    # The redaction event that applies to this event, once it is valid.
    Column("redacted_by", Text, nullable=True),
    Index("events_room_stream", "room_nid", "stream_ordering"),
    Index("events_room_topo", "room_nid", "depth", "stream_ordering"),
    Index("events_room_type_state", "room_nid", "type", "state_key"),
)

event_edges = Table(
    "event_edges",
    metadata,
    Column("event_nid", Integer, ForeignKey("events.event_nid", ondelete="CASCADE"), primary_key=True),
    Column("prev_event_id", Text, primary_key=True),
    Index("event_edges_prev", "prev_event_id"),
)

event_auth_edges = Table(
    "event_auth_edges",
    metadata,
    Column("event_nid", Integer, ForeignKey("events.event_nid", ondelete="CASCADE"), primary_key=True),
    Column("auth_event_id", Text, primary_key=True),
)

forward_extremities = Table(
    "forward_extremities",
    metadata,
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("event_nid", Integer, ForeignKey("events.event_nid", ondelete="CASCADE"), primary_key=True),
)

state_keys = Table(
    "state_keys",
    metadata,
    Column("state_key_nid", Integer, primary_key=True, autoincrement=True),
    Column("type", Text, nullable=False),
    Column("state_key", Text, nullable=False),
    UniqueConstraint("type", "state_key", name="state_keys_type_state_key"),
)

# A snapshot is either a full state map (parent NULL) or the entries that differ
# from its parent snapshot; chains are kept short so loading stays cheap. The
# hash of the full map deduplicates identical states.
state_snapshots = Table(
    "state_snapshots",
    metadata,
    Column("snapshot_nid", Integer, primary_key=True, autoincrement=True),
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), nullable=False),
    Column("hash", LargeBinary, nullable=False, unique=True),
    Column("parent_snapshot_nid", Integer, nullable=True),
    Column("chain_length", Integer, nullable=False),
)

state_snapshot_entries = Table(
    "state_snapshot_entries",
    metadata,
    Column("snapshot_nid", Integer, ForeignKey("state_snapshots.snapshot_nid", ondelete="CASCADE"),
           primary_key=True),
    Column("state_key_nid", Integer, primary_key=True),
    Column("event_nid", Integer, nullable=False),
)

# The resolved state at the room's forward extremities, for fast reads.
current_state = Table(
    "current_state",
    metadata,
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("state_key_nid", Integer, primary_key=True),
    Column("event_nid", Integer, nullable=False),
)

# Current membership of every user in every room (derived from current_state).
room_members = Table(
    "room_members",
    metadata,
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("membership", Text, nullable=False),
    Column("event_nid", Integer, nullable=False),
    # Stream position of the membership event, for "rooms changed since".
    Column("stream_ordering", BigInteger, nullable=False),
    # Set by /forget; the room then disappears from the user's lists.
    Column("forgotten", Boolean, nullable=False, default=False),
    Index("room_members_user", "user_id", "membership"),
)

# Client transaction ids: PUT /send/{type}/{txnId} is idempotent per device.
event_txn_ids = Table(
    "event_txn_ids",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("txn_id", Text, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
)

# Relations (m.relates_to) of each event, for /relations, threads and the
# aggregations served in unsigned.m.relations.
event_relations = Table(
    "event_relations",
    metadata,
    Column("event_nid", Integer, ForeignKey("events.event_nid", ondelete="CASCADE"), primary_key=True),
    Column("relates_to_id", Text, nullable=False),
    Column("rel_type", Text, nullable=False),
    # m.annotation's key (the reaction emoji), NULL otherwise.
    Column("aggregation_key", Text, nullable=True),
    Index("event_relations_target", "relates_to_id", "rel_type"),
)

room_aliases = Table(
    "room_aliases",
    metadata,
    Column("alias", Text, primary_key=True),
    Column("room_id", Text, nullable=False),
    Column("creator", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Index("room_aliases_room", "room_id"),
)

# --- reading rooms ----------------------------------------------------------

# GET /timestamp_to_event: the event nearest a time in one room.
Index("events_room_ts", events.c.room_nid, events.c.origin_server_ts)
# unsigned.transaction_id: which of the served events this device sent.
Index("event_txn_ids_event", event_txn_ids.c.event_id)

# Reports of events, rooms and users (POST .../report) for server admins.
content_reports = Table(
    "content_reports",
    metadata,
    Column("report_id", Integer, primary_key=True, autoincrement=True),
    Column("kind", Text, nullable=False),  # "event", "room" or "user"
    Column("reporter", Text, nullable=False),
    Column("room_id", Text, nullable=True),
    Column("event_id", Text, nullable=True),
    Column("target_user_id", Text, nullable=True),
    Column("reason", Text, nullable=True),
    Column("received_ts", BigInteger, nullable=False),
    Index("content_reports_received", "received_ts"),
)

# --- threads, full-text search, user directory ---------------------------------

# One row per thread root with the latest event in the thread, so GET /threads
# pages through a room's threads by activity with one index range scan.
threads = Table(
    "threads",
    metadata,
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("root_event_id", Text, primary_key=True),
    Column("latest_event_nid", Integer, nullable=False),
    # Unique across threads: no two threads share a latest event.
    Column("latest_stream", BigInteger, nullable=False),
    Index("threads_room_latest", "room_nid", "latest_stream"),
)

# The searchable text of each event (content.body, content.name or
# content.topic). The full-text index over `value` is engine specific and made
# by migration 0005: an FTS5 table `event_search_fts` kept in step by triggers
# on SQLite, a GIN index on to_tsvector(value) named `event_search_fts` on
# PostgreSQL. Rows go when the event is redacted.
event_search = Table(
    "event_search",
    metadata,
    Column("event_nid", Integer, ForeignKey("events.event_nid", ondelete="CASCADE"), primary_key=True),
    Column("room_nid", Integer, nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
    Index("event_search_room_stream", "room_nid", "stream_ordering"),
)

FULL_TEXT_INDEX = "event_search_fts"


def in_schema_comparison(name: str | None, type_: str, parent_names: object) -> bool:
    """Whether the schema check compares a database object with this module.

    The engine-specific full-text index (and FTS5's shadow tables) are not
    described here; everything else is.
    """
    return not (name or "").startswith(FULL_TEXT_INDEX)


# Rooms whose members the user directory shows to everyone: a public join rule
# or world-readable history (the latest such state event persisted decides).
room_publicity = Table(
    "room_publicity",
    metadata,
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("public_join", Boolean, nullable=False),
    Column("world_readable", Boolean, nullable=False),
)

# --- push: rules, notification counts, pushers ----------------------------------

# A user's own push rules. `priority` orders the rules of one kind (higher is
# tried first); `conditions` (override/underride) and `actions` are JSON.
push_rules = Table(
    "push_rules",
    metadata,
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("kind", Text, primary_key=True),
    Column("rule_id", Text, primary_key=True),
    Column("priority", Integer, nullable=False),
    Column("conditions", Text, nullable=True),
    Column("pattern", Text, nullable=True),
    Column("actions", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
)

# A user's changes to server-default rules (only `enabled` and `actions` may change).
push_rule_defaults = Table(
    "push_rule_defaults",
    metadata,
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True),
    Column("rule_id", Text, primary_key=True),
    Column("enabled", Boolean, nullable=True),
    Column("actions", Text, nullable=True),
)

# One row per (local user, event) that notified the user: GET /notifications and
# the source of recounts when a read receipt moves. `thread_id` is "main" or
# the thread root's event ID.
event_push_actions = Table(
    "event_push_actions",
    metadata,
    Column("user_id", Text, primary_key=True),
    # No foreign key to events: see migration 0011.
    Column("event_nid", Integer, primary_key=True),
    Column("room_nid", Integer, nullable=False),
    Column("stream_ordering", BigInteger, nullable=False),
    Column("thread_id", Text, nullable=False),
    Column("actions", Text, nullable=False),
    Column("highlight", Boolean, nullable=False),
    Column("notified_ts", BigInteger, nullable=False),
    Index("event_push_actions_user_room", "user_id", "room_nid", "stream_ordering"),
    Index("event_push_actions_user_stream", "user_id", "stream_ordering"),
)

# Unread notification counts per (user, room, thread) since the user's read
# position: what /sync serves, kept up to date so a sync reads a few rows.
push_counts = Table(
    "push_counts",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("thread_id", Text, primary_key=True),
    Column("notification_count", Integer, nullable=False),
    Column("highlight_count", Integer, nullable=False),
)

# How far a user has read a room, from m.read / m.read.private receipts and
# their own events: thread_id "" for unthreaded receipts (the whole room),
# else "main" or a thread root. Stream positions of the receipted events.
push_read = Table(
    "push_read",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("thread_id", Text, primary_key=True),
    Column("stream_ordering", BigInteger, nullable=False),
)

# Pushers (POST /pushers/set). `data` is JSON; `pushkey_ts` is milliseconds.
pushers = Table(
    "pushers",
    metadata,
    Column("pusher_id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Text, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("app_id", Text, nullable=False),
    Column("pushkey", Text, nullable=False),
    Column("pushkey_ts", BigInteger, nullable=False),
    Column("lang", Text, nullable=False),
    Column("data", Text, nullable=False),
    Column("app_display_name", Text, nullable=False),
    Column("device_display_name", Text, nullable=False),
    Column("profile_tag", Text, nullable=True),
    Column("device_id", Text, nullable=True),
    UniqueConstraint("user_id", "app_id", "pushkey", name="pushers_user_app_pushkey"),
    Index("pushers_app_pushkey", "app_id", "pushkey"),
)

# --- receipts and presence ------------------------------------------------------

# The latest receipt of each (room, user, type, thread): thread_id "" is an
# unthreaded receipt, else "main" or a thread root's event ID. `stream_id` is
# the position on the "receipts" stream of the last change, so sync reads
# "what changed since" with one range scan; `event_stream` is the receipted
# event's stream ordering, so a receipt never moves backwards.
receipts = Table(
    "receipts",
    metadata,
    Column("room_nid", Integer, ForeignKey("rooms.room_nid", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Text, primary_key=True),
    Column("receipt_type", Text, primary_key=True),
    Column("thread_id", Text, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("event_stream", BigInteger, nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("stream_id", BigInteger, nullable=False),
    Index("receipts_stream", "stream_id"),
)

# Each user's presence as last published on the "presence" stream (`stream_id`),
# with the activity times it was computed from. No foreign key to users:
# presence of remote users will live here too.
presence = Table(
    "presence",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("state", Text, nullable=False),
    Column("status_msg", Text, nullable=True),
    Column("last_active_ts", BigInteger, nullable=False),
    Column("last_seen_ts", BigInteger, nullable=False),
    Column("currently_active", Boolean, nullable=False),
    Column("stream_id", BigInteger, nullable=False),
    Index("presence_stream", "stream_id"),
    Index("presence_state", "state"),
)

# --- to-device messages -----------------------------------------------------------

# Each device's inbox of send-to-device messages, kept until the device syncs
# with a token past them (acknowledgement). `stream_id` is the position on the
# "to_device" stream of the send that queued it: one position per request, so
# a device has at most one message at each position.
to_device_inbox = Table(
    "to_device_inbox",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("stream_id", BigInteger, primary_key=True),
    Column("sender", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("content", Text, nullable=False),
)

# Transaction ids of PUT /sendToDevice/{type}/{txnId}, per sending device, so a
# retried request is not delivered twice.
to_device_txns = Table(
    "to_device_txns",
    metadata,
    Column("user_id", Text, primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("txn_id", Text, primary_key=True),
    Column("created_ts", BigInteger, nullable=False),
)
