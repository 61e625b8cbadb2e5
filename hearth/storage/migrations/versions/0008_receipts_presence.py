"""receipts and presence

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("receipt_type", sa.Text(), nullable=False),
        sa.Column("thread_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_stream", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_nid", "user_id", "receipt_type", "thread_id"),
    )
    op.create_index("receipts_stream", "receipts", ["stream_id"])
    op.create_table(
        "presence",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("status_msg", sa.Text(), nullable=True),
        sa.Column("last_active_ts", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ts", sa.BigInteger(), nullable=False),
        sa.Column("currently_active", sa.Boolean(), nullable=False),
        sa.Column("stream_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_index("presence_stream", "presence", ["stream_id"])
    op.create_index("presence_state", "presence", ["state"])


def downgrade() -> None:
    op.drop_index("presence_state", table_name="presence")
    op.drop_index("presence_stream", table_name="presence")
    op.drop_table("presence")
    op.drop_index("receipts_stream", table_name="receipts")
    op.drop_table("receipts")
