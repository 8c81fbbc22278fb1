"""a fingerprint of the request that made a job, so an Idempotency-Key reused for a
different request is refused; rows from before it keep NULL (their input's sha256 stands in)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("request_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("request_sha256")
