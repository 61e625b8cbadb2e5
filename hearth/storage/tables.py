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
