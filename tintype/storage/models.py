"""Database tables: a job and the chunks of frames it was split into; batches of jobs."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = (SUCCEEDED, FAILED, CANCELLED)
KINDS = ("image", "video")
LOCAL_OWNER = "local"  # the one owner of an installation that runs without API keys
USER, OPERATOR = "user", "operator"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A stored time with its zone: SQLite hands back naive datetimes, PostgreSQL aware ones."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), default=LOCAL_OWNER)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # sha256 of what the request asked for (jobs.fingerprint); NULL on rows made before it was kept
    request_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    stage: Mapped[str] = mapped_column(String(32), default="queued")
    operations: Mapped[list[str]] = mapped_column(JSON, default=list)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    input_name: Mapped[str] = mapped_column(String(255))
    input_bytes: Mapped[int] = mapped_column(Integer)
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    has_mask: Mapped[int] = mapped_column(Integer, default=0)
    has_reference: Mapped[int] = mapped_column(Integer, default=0)
    # [{"frame": 120, "source": "user" | "auto" | "reference"}], by frame; the pictures are objects
    keyframes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    recolour_of: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the job this one recolours
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    output_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    output_content_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_bytes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    preview_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    compare_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    used_masks_key: Mapped[str | None] = mapped_column(String(255), nullable=True)  # inpainting: what was filled
    mask_poster_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Files made beside the result, by name (tintype.jobs.outputs): {"master": {"key", ...}}
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    quality: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    timings: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    celery_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    chunks: Mapped[list["Chunk"]] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                 order_by="Chunk.index")

    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),
                      Index("ix_jobs_kind", "kind"),
                      Index("ix_jobs_owner_created", "owner", "created_at"),
                      UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency"))


class Chunk(Base):
    __tablename__ = "chunks"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[int] = mapped_column(Integer)  # first output frame
    count: Mapped[int] = mapped_column(Integer)  # output frames
    decode_start: Mapped[int] = mapped_column(Integer)  # first frame decoded (context included)
    decode_count: Mapped[int] = mapped_column(Integer)
    seek_time: Mapped[float | None] = mapped_column(Float, nullable=True)  # absolute, seconds
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    job: Mapped[Job] = relationship(back_populates="chunks")


class ApiKey(Base):
    """An API key: the public id is the token's prefix; only a hash of the token is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16), default=USER)
    token_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128), default="")
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: the setting
    jobs_in_flight: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bytes_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Worker(Base):
    """A Celery worker process that is up: its pool and task slots (the scaling signal
    counts the slots of workers seen within 3 HEARTBEAT_SECONDS), what it runs now, when
    it last beat, and whether an operator asked it to drain (`tintype workers`, `tintype
    drain`). A worker that stops removes its row; rows of workers that died age out."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)  # Celery node name, pool-xxxx@host
    host: Mapped[str] = mapped_column(String(255), index=True)
    pool: Mapped[str] = mapped_column(String(32))  # the queues it consumes
    slots: Mapped[int] = mapped_column(Integer, default=1)  # its Celery concurrency
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # what each pool process runs: {"<pid>": {"task", "job", "chunk", "since"}}
    running: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    drain_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    draining_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_workers_pool_seen", "pool", "seen_at"),)


class Batch(Base):
    """Many files submitted at once (REST /batches): one job per item, so each item runs,
    fails and is fetched on its own; the batch only groups them and counts their statuses.
    An item's job may later be deleted on its own: the batch then counts it as removed."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), default=LOCAL_OWNER)
    source: Mapped[str] = mapped_column(String(16))  # "upload" or "prefix"
    prefix: Mapped[str | None] = mapped_column(String(1024), nullable=True)  # the storage prefix read
    items: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    members: Mapped[list["BatchItem"]] = relationship(cascade="all, delete-orphan", order_by="BatchItem.position")

    __table_args__ = (Index("ix_batches_owner_created", "owner", "created_at"),)


class BatchItem(Base):
    """One file of a batch and the job made of it (no foreign key to jobs: a job removed on
    its own leaves the item, counted as removed)."""

    __tablename__ = "batch_items"

    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(1024))
    job_id: Mapped[str] = mapped_column(String(32))

    __table_args__ = (Index("ix_batch_items_job", "job_id"),)


class Upload(Base):
    """A staged upload (tintype.jobs.uploads): a file sent in parts, resumable, that a job
    is made of once it is complete. `transport` says where the parts go: "s3" (presigned
    part URLs of an S3 multipart upload, `s3_upload_id`) or "app" (PUT to the web app)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), default=LOCAL_OWNER)
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(128))
    part_size: Mapped[int] = mapped_column(BigInteger)
    parts: Mapped[int] = mapped_column(Integer)
    transport: Mapped[str] = mapped_column(String(8))
    s3_upload_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # "open", "completed", then "used" by a job
    expected_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the client's, if sent
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # measured on completion
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the job that took the file
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_uploads_owner_status", "owner", "status"),
                      Index("ix_uploads_expires", "expires_at"))
