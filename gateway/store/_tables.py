"""The store's schema, as SQLAlchemy Core tables; Alembic migrations (migrations/versions) create it.

Times are UNIX seconds (floats) so SQLite and Postgres compare them the same way; JSON columns
hold OpenAI-shaped objects exactly as the API returns them, so a GET is a read, not a rebuild.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),  # key fingerprint; "" with auth off
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("background", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),  # refreshed while generating
    sa.Column("previous_response_id", sa.String(64), nullable=True),
    sa.Column("conversation_id", sa.String(64), nullable=True),
    sa.Column("input_items", sa.JSON, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Index("ix_responses_created_at", "created_at"),
    sa.Index("ix_responses_status_heartbeat", "status", "heartbeat_at"),
)

# The stream events of background responses, replayed by GET ...?stream=true&starting_after=N.
response_events = sa.Table(
    "response_events",
    metadata,
    sa.Column(
        "response_id", sa.String(64), sa.ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("event", sa.JSON, nullable=False),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Index("ix_conversations_created_at", "created_at"),
)

conversation_items = sa.Table(
    "conversation_items",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),  # order within a conversation
    sa.Column(
        "conversation_id",
        sa.String(64),
        sa.ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("item", sa.JSON, nullable=False),
    sa.Index("ix_conversation_items_conv_seq", "conversation_id", "seq"),
    sa.UniqueConstraint("conversation_id", "item_id", name="uq_conversation_items_item"),
)
