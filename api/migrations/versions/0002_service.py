"""The service records: API keys, threads and messages, suggestions, feedback, audit log, jobs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_keys',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash')
    )
    op.create_index('ix_api_keys_tenant', 'api_keys', ['tenant'])
    op.create_table('threads',
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('id', sa.String(length=200), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('customer', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('message_count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant', 'id')
    )
    op.create_table('messages',
        sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('thread_id', sa.String(length=200), nullable=False),
        sa.Column('message_id', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('ts', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('seq'),
        sa.UniqueConstraint('tenant', 'thread_id', 'message_id', name='uq_message_id')
    )
    op.create_index('ix_messages_thread', 'messages', ['tenant', 'thread_id', 'seq'])
    op.create_table('suggestion_sets',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('thread_id', sa.String(length=200), nullable=True),
        sa.Column('key_id', sa.String(length=40), nullable=True),
        sa.Column('engine', sa.String(length=20), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=True),
        sa.Column('answered', sa.Boolean(), nullable=False),
        sa.Column('query', sa.Text(), nullable=False),
        sa.Column('intent', sa.String(length=200), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('fallback_from', sa.String(length=20), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_suggestion_sets_created_at', 'suggestion_sets', ['created_at'])
    op.create_index('ix_suggestion_sets_tenant', 'suggestion_sets', ['tenant'])
    op.create_table('suggestions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('set_id', sa.String(length=40), nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('rank', sa.Integer(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('macro_id', sa.String(length=200), nullable=True),
        sa.Column('citations', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['set_id'], ['suggestion_sets.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_suggestions_set_id', 'suggestions', ['set_id'])
    op.create_index('ix_suggestions_tenant', 'suggestions', ['tenant'])
    op.create_table('feedback',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('suggestion_id', sa.String(length=40), nullable=False),
        sa.Column('event', sa.String(length=20), nullable=False),
        sa.Column('final_text', sa.Text(), nullable=True),
        sa.Column('reason', sa.String(length=500), nullable=True),
        sa.Column('edit_distance', sa.Integer(), nullable=True),
        sa.Column('edit_ratio', sa.Float(), nullable=True),
        sa.Column('key_id', sa.String(length=40), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['suggestion_id'], ['suggestions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_feedback_at', 'feedback', ['at'])
    op.create_index('ix_feedback_suggestion_id', 'feedback', ['suggestion_id'])
    op.create_index('ix_feedback_tenant', 'feedback', ['tenant'])
    op.create_table('audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('key_id', sa.String(length=40), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('method', sa.String(length=10), nullable=False),
        sa.Column('route', sa.String(length=200), nullable=False),
        sa.Column('object_id', sa.String(length=500), nullable=True),
        sa.Column('outcome', sa.String(length=60), nullable=False),
        sa.Column('request_id', sa.String(length=64), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_index('ix_audit_log_tenant', 'audit_log', ['tenant'])
    op.create_table('jobs',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('current', sa.Text(), nullable=True),
        sa.Column('result', sa.JSON(), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('key_id', sa.String(length=40), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_jobs_tenant', 'jobs', ['tenant'])


def downgrade() -> None:
    op.drop_table('jobs')
    op.drop_table('audit_log')
    op.drop_table('feedback')
    op.drop_table('suggestions')
    op.drop_table('suggestion_sets')
    op.drop_table('messages')
    op.drop_table('threads')
    op.drop_table('api_keys')
