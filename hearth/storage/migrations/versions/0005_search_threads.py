"""threads, full-text search over event text, room publicity for the user directory

Revision ID: 0005
Revises: 0004

The only engine-specific step is the full-text index on event_search.value:
SQLite gets an FTS5 table (external content, porter stemming) that triggers
keep in step with event_search; PostgreSQL a GIN index on the english
to_tsvector of the text. Search queries must use the very same expression
(`hearth.storage.dialect.full_text_search`) for the planner to use the index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threads",
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("root_event_id", sa.Text(), nullable=False),
        sa.Column("latest_event_nid", sa.Integer(), nullable=False),
        sa.Column("latest_stream", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_nid", "root_event_id"),
    )
    op.create_index("threads_room_latest", "threads", ["room_nid", "latest_stream"], unique=False)
    op.create_table(
        "event_search",
        sa.Column("event_nid", sa.Integer(), nullable=False),
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("stream_ordering", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["event_nid"], ["events.event_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("event_nid"),
    )
    op.create_index("event_search_room_stream", "event_search", ["room_nid", "stream_ordering"], unique=False)
    op.create_table(
        "room_publicity",
        sa.Column("room_nid", sa.Integer(), nullable=False),
        sa.Column("public_join", sa.Boolean(), nullable=False),
        sa.Column("world_readable", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["room_nid"], ["rooms.room_nid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("room_nid"),
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE event_search_fts USING fts5("
            "value, content='event_search', content_rowid='event_nid', tokenize='porter unicode61')"
        )
        op.execute(
            "CREATE TRIGGER event_search_fts_insert AFTER INSERT ON event_search BEGIN "
            "INSERT INTO event_search_fts (rowid, value) VALUES (new.event_nid, new.value); END"
        )
        op.execute(
            "CREATE TRIGGER event_search_fts_delete AFTER DELETE ON event_search BEGIN "
            "INSERT INTO event_search_fts (event_search_fts, rowid, value) "
            "VALUES ('delete', old.event_nid, old.value); END"
        )
    else:
        op.execute(
            "CREATE INDEX event_search_fts ON event_search "
            "USING GIN (to_tsvector('english'::regconfig, value))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS event_search_fts_delete")
        op.execute("DROP TRIGGER IF EXISTS event_search_fts_insert")
        op.execute("DROP TABLE IF EXISTS event_search_fts")
    else:
        op.execute("DROP INDEX IF EXISTS event_search_fts")
    op.drop_table("room_publicity")
    op.drop_index("event_search_room_stream", table_name="event_search")
    op.drop_table("event_search")
    op.drop_index("threads_room_latest", table_name="threads")
    op.drop_table("threads")
