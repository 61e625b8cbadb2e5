"""rooms, events, state snapshots

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_txn_ids",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("txn_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "device_id", "txn_id"),
    )
    op.create_table(
        "room_aliases",
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("room_id", sa.Text(), nullable=False),
        sa.Column("creator", sa.Text(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("alias"),
    )
    with op.batch_alter_table("room_aliases", schema=None) as batch_op:
        batch_op.create_index("room_aliases_room", ["room_id"], unique=False)

    op.create_table(
        "rooms",
        sa.Column("room_nid", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("room_id", sa.Text(), nullable=False),
        sa.Column("room_version", sa.Text(), nullable=False),
        sa.Column("created_ts", sa.BigInteger(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("current_snapshot_nid", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("room_nid"),
        sa.UniqueConstraint("room_id"),
    )
    op.create_table(
        "state_keys",
        sa.Column("state_key_nid", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("state_key", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("state_key_nid"),
        sa.UniqueConstraint("type", "state_key", name="state_keys_type_state_key"),
    )
    op.create_table(
        "current_state",
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("state_key_nid", sa.Integer(), nullable=False),
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_nid", "state_key_nid"),
    )
    op.create_table(
        "events",
        sa.Column("event_nid", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("state_key", sa.Text(), nullable=True),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("depth", sa.BigInteger(), nullable=False),
        sa.Column("origin_server_ts", sa.BigInteger(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=True),
        sa.Column("json", sa.Text(), nullable=False),
        sa.Column("state_before_nid", sa.Integer(), nullable=True),
        sa.Column("state_after_nid", sa.Integer(), nullable=True),
        sa.Column("rejected_reason", sa.Text(), nullable=True),
        sa.Column("outlier", sa.Boolean(), nullable=False),
        sa.Column("redacted_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_nid"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("stream_ordering"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("events_room_stream", ["room_nid", "stream_ordering"], unique=False)
        batch_op.create_index("events_room_topo", ["room_nid", "depth", "stream_ordering"], unique=False)
        batch_op.create_index("events_room_type_state", ["room_nid", "type", "state_key"], unique=False)

    op.create_table(
        "room_members",
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("membership", sa.Text(), nullable=False),
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.Column("forgotten", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_nid", "user_id"),
    )
    with op.batch_alter_table("room_members", schema=None) as batch_op:
        batch_op.create_index("room_members_user", ["user_id", "membership"], unique=False)

    op.create_table(
        "state_snapshots",
        sa.Column("snapshot_nid", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.Column("parent_snapshot_nid", sa.Integer(), nullable=True),
        sa.Column("chain_length", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_nid"),
        sa.UniqueConstraint("hash"),
    )
    op.create_table(
        "event_auth_edges",
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.Column("auth_event_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["event_nid"], ["events.event_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_nid", "auth_event_id"),
    )
    op.create_table(
        "event_edges",
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.Column("prev_event_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["event_nid"], ["events.event_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_nid", "prev_event_id"),
    )
    with op.batch_alter_table("event_edges", schema=None) as batch_op:
        batch_op.create_index("event_edges_prev", ["prev_event_id"], unique=False)

    op.create_table(
        "event_relations",
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.Column("relates_to_id", sa.Text(), nullable=False),
        sa.Column("rel_type", sa.Text(), nullable=False),
        sa.Column("aggregation_key", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["event_nid"], ["events.event_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_nid"),
    )
    with op.batch_alter_table("event_relations", schema=None) as batch_op:
        batch_op.create_index("event_relations_target", ["relates_to_id", "rel_type"], unique=False)

    op.create_table(
        "forward_extremities",
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_nid"], ["events.event_nid"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_nid", "event_nid"),
    )
    op.create_table(
        "state_snapshot_entries",
        sa.Column("snapshot_nid", sa.Integer(), nullable=False),
        sa.Column("state_key_nid", sa.Integer(), nullable=False),
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["snapshot_nid"], ["state_snapshots.snapshot_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("snapshot_nid", "state_key_nid"),
    )


def downgrade() -> None:
    op.drop_table("state_snapshot_entries")
    op.drop_table("forward_extremities")
    with op.batch_alter_table("event_relations", schema=None) as batch_op:
        batch_op.drop_index("event_relations_target")

    op.drop_table("event_relations")
    with op.batch_alter_table("event_edges", schema=None) as batch_op:
        batch_op.drop_index("event_edges_prev")

    op.drop_table("event_edges")
    op.drop_table("event_auth_edges")
    op.drop_table("state_snapshots")
    with op.batch_alter_table("room_members", schema=None) as batch_op:
        batch_op.drop_index("room_members_user")

    op.drop_table("room_members")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("events_room_type_state")
        batch_op.drop_index("events_room_topo")
        batch_op.drop_index("events_room_stream")

    op.drop_table("events")
    op.drop_table("current_state")
    op.drop_table("state_keys")
    op.drop_table("rooms")
    with op.batch_alter_table("room_aliases", schema=None) as batch_op:
        batch_op.drop_index("room_aliases_room")

    op.drop_table("room_aliases")
    op.drop_table("event_txn_ids")
