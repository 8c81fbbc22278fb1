"""keyframes of a job, and the job a recolour job was made from

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("keyframes", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("recolour_of", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("recolour_of")
        batch.drop_column("keyframes")
