"""Each enrolled person's 64 px real crops (with their embeddings) are kept as an artifact of kind
'real_crops': the genuine trials the score fusion is fitted on at calibration, and the general
discriminator's training data. Erased with the person, like every biometric.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "kind in ('generator', 'personal_discriminator', 'general_discriminator')"
NEW = "kind in ('generator', 'personal_discriminator', 'general_discriminator', 'real_crops')"


def _replace_kind_check(expression: str) -> None:
    with op.batch_alter_table("model_artifacts", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint("artifact_kind", type_="check")
        batch_op.create_check_constraint("artifact_kind", expression)


def upgrade() -> None:
    _replace_kind_check(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM model_artifacts WHERE kind = 'real_crops'")
    _replace_kind_check(OLD)
