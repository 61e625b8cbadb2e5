"""Notifications: no foreign key from event_push_actions to events

Revision ID: 0011
Revises: 0010

A message into a room of N members stores N-1 notification rows naming the
same event. PostgreSQL checks each row's foreign key by locking the events
row it names (FOR KEY SHARE), and many lockers of one row make it record a
multixact: in a 20-member room the push worker's insert took three times as
long with the key as without. The rows are written only by the push worker,
for events it has just read back or been handed after their commit, and
events are never deleted row by row, so the key guarded nothing that can
happen.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_PG_NAME = "event_push_actions_event_nid_fkey"
# SQLite's constraint has no name: batch mode names it by this convention to drop it.
_SQLITE_NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
_SQLITE_NAME = "fk_event_push_actions_event_nid_events"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("event_push_actions", naming_convention=_SQLITE_NAMING) as batch:
            batch.drop_constraint(_SQLITE_NAME, type_="foreignkey")
    else:
        op.drop_constraint(_PG_NAME, "event_push_actions", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("event_push_actions") as batch:
            batch.create_foreign_key(None, "events", ["event_nid"], ["event_nid"], ondelete="CASCADE")
    else:
        op.create_foreign_key(_PG_NAME, "event_push_actions", "events", ["event_nid"], ["event_nid"],
                              ondelete="CASCADE")
