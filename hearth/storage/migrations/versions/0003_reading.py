"""reading rooms: content reports, timestamp and transaction id lookups

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "content_reports",
        sa.Column("report_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("reporter", sa.Text(), nullable=False),
        sa.Column("room_id", sa.Text(), nullable=True),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("target_user_id", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_ts", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("report_id"),
    )
    op.create_index("content_reports_received", "content_reports", ["received_ts"], unique=False)
    op.create_index("events_room_ts", "events", ["room_nid", "origin_server_ts"], unique=False)
    op.create_index("event_txn_ids_event", "event_txn_ids", ["event_id"], unique=False)


def downgrade() -> None:
    op.drop_index("event_txn_ids_event", table_name="event_txn_ids")
    op.drop_index("events_room_ts", table_name="events")
    op.drop_index("content_reports_received", table_name="content_reports")
    op.drop_table("content_reports")
