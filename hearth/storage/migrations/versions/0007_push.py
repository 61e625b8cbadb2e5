"""push rules, notification counts and pushers

Revision ID: 0007
Revises: 0006

Also starts the push processing position (a `stream_counters` row,
"push_actions") at the newest event already stored, so a server upgraded with
history does not compute notifications for all of it on first start.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_rules",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=True),
        sa.Column("pattern", sa.Text(), nullable=True),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "kind", "rule_id"),
    )
    op.create_table(
        "push_rule_defaults",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=True),
        sa.Column("actions", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "rule_id"),
    )
    op.create_table(
        "event_push_actions",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("highlight", sa.Boolean(), nullable=False),
        sa.Column("notified_ts", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["event_nid"], ["events.event_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "event_nid"),
    )
    op.create_index(
        "event_push_actions_user_room", "event_push_actions", ["user_id", "room_nid", "stream_ordering"]
    )
    op.create_index("event_push_actions_user_stream", "event_push_actions", ["user_id", "stream_ordering"])
    op.create_table(
        "push_counts",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("notification_count", sa.Integer(), nullable=False),
        sa.Column("highlight_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "room_nid", "thread_id"),
    )
    op.create_table(
        "push_read",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "room_nid", "thread_id"),
    )
    op.create_table(
        "pushers",
        sa.Column("pusher_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("app_id", sa.Text(), nullable=False),
        sa.Column("pushkey", sa.Text(), nullable=False),
        sa.Column("pushkey_ts", sa.BigInteger(), nullable=False),
        sa.Column("lang", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("app_display_name", sa.Text(), nullable=False),
        sa.Column("device_display_name", sa.Text(), nullable=False),
        sa.Column("profile_tag", sa.Text(), nullable=True),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.user_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("pusher_id"),
        sa.UniqueConstraint("user_id", "app_id", "pushkey", name="pushers_user_app_pushkey"),
    )
    op.create_index("pushers_app_pushkey", "pushers", ["app_id", "pushkey"])
    op.execute(
        "INSERT INTO stream_counters (stream, position) "
        "SELECT 'push_actions', COALESCE(MAX(stream_ordering), 0) FROM events"
    )


def downgrade() -> None:
    op.execute("DELETE FROM stream_counters WHERE stream = 'push_actions'")
    op.drop_index("pushers_app_pushkey", table_name="pushers")
    op.drop_table("pushers")
    op.drop_table("push_read")
    op.drop_table("push_counts")
    op.drop_index("event_push_actions_user_stream", table_name="event_push_actions")
    op.drop_index("event_push_actions_user_room", table_name="event_push_actions")
    op.drop_table("event_push_actions")
    op.drop_table("push_rule_defaults")
    op.drop_table("push_rules")
