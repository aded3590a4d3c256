"""Enrollment jobs carry their stage, the person's own id and the GAN sample grid; API keys record
when they were last used.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("sample_grid", sa.LargeBinary(), nullable=True))
        batch_op.create_index("ix_enrollment_jobs_status", ["status"], unique=False)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
    with op.batch_alter_table("enrollment_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollment_jobs_status")
        batch_op.drop_column("sample_grid")
        batch_op.drop_column("external_id")
        batch_op.drop_column("stage")
