"""owners, hashed API keys and idempotent submission

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False, index=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False),
        sa.Column("label", sa.String(128), nullable=False, server_default=""),
        sa.Column("requests_per_minute", sa.Integer, nullable=True),
        sa.Column("jobs_in_flight", sa.Integer, nullable=True),
        sa.Column("bytes_per_day", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=False, server_default="local"))
        batch.add_column(sa.Column("idempotency_key", sa.String(128), nullable=True))
        batch.create_index("ix_jobs_owner_created", ["owner", "created_at"])
        batch.create_unique_constraint("uq_jobs_owner_idempotency", ["owner", "idempotency_key"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_owner_idempotency", type_="unique")
        batch.drop_index("ix_jobs_owner_created")
        batch.drop_column("idempotency_key")
        batch.drop_column("owner")
    op.drop_table("api_keys")
