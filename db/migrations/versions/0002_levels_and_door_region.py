"""The security-level calibration table, and the region of the frame a door decides on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "level_calibrations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("embedder", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("impostor_trials", sa.Integer(), nullable=False),
        sa.Column("table", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("level_calibrations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_level_calibrations_embedder"), ["embedder"], unique=False
        )
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("region", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("doors", schema=None) as batch_op:
        batch_op.drop_column("region")
    with op.batch_alter_table("level_calibrations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_level_calibrations_embedder"))
    op.drop_table("level_calibrations")
