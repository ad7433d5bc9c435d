"""The knowledge registry: tenants, documents with their versions, live chunks.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tenants',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('display_name', sa.String(length=200), nullable=False),
        sa.Column('knowledge_version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name')
    )
    op.create_table('documents',
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('document_id', sa.String(length=500), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('locale', sa.String(length=20), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('chunk_count', sa.Integer(), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant', 'document_id')
    )
    op.create_table('document_versions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('document_id', sa.String(length=500), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('chunk_count', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_document_versions_document_id', 'document_versions', ['document_id'])
    op.create_index('ix_document_versions_tenant', 'document_versions', ['tenant'])
    op.create_table('chunks',
        sa.Column('tenant', sa.String(length=40), nullable=False),
        sa.Column('chunk_id', sa.String(length=600), nullable=False),
        sa.Column('document_id', sa.String(length=500), nullable=False),
        sa.Column('ordinal', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('section', sa.Text(), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('locale', sa.String(length=20), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        sa.Column('extra', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['tenant'], ['tenants.name'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant', 'chunk_id')
    )
    op.create_index('ix_chunks_document_id', 'chunks', ['document_id'])


def downgrade() -> None:
    op.drop_table('chunks')
    op.drop_table('document_versions')
    op.drop_table('documents')
    op.drop_table('tenants')
