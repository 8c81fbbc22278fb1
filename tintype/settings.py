"""Every setting tintype reads, in one place, from environment variables.

The defaults describe the embedded mode (SQLite, a local object directory and a
broker that needs no server) so that `make run` works on a bare machine; a deployment
overrides them with DATABASE_URL, BROKER_URL, STORAGE_URL and friends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, TypeVar


class _Environment:
    """Typed reads from one mapping of variables (the process environment by default),
    so a caller can load settings for another data folder without touching os.environ."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get(self, name: str) -> str | None:
        return self.environ.get(name) or None

    def text(self, name: str, default: str) -> str:
        value = self.environ.get(name)
        return default if value is None or value == "" else value

    def int(self, name: str, default: int) -> int:
        raw = self.text(name, str(default))
        try:
            return int(raw)
        except ValueError as exc:
            raise ValueError(f"setting {name} must be an integer, got {raw!r}") from exc

    def float(self, name: str, default: float) -> float:
        raw = self.text(name, str(default))
        try:
            return float(raw)
        except ValueError as exc:
            raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc

    def bool(self, name: str, default: bool) -> bool:
        raw = self.text(name, "1" if default else "0").strip().lower()
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ValueError(f"setting {name} must be a boolean (1/0, true/false), got {raw!r}")


DEFAULT_SECRET = "embedded-default-not-secret"
PRECISIONS = ("auto", "fp32", "fp16", "bf16")  # MODEL_PRECISION
HWACCEL_MODES = ("auto", "off", "cuda")  # FFMPEG_HWACCEL
SIGN_ALGS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")  # C2PA_SIGN_ALG


@dataclass(frozen=True)
class Settings:
    """Process-wide configuration; build it with `load_settings()`."""

    data_dir: Path
    database_url: str
    broker_url: str
    result_backend: str
    storage_url: str
    s3_endpoint_url: str | None
    s3_region: str
    s3_read_timeout: float
    presign_seconds: int
    max_upload_bytes: int
    max_image_pixels: int
    max_video_frames: int
    max_video_seconds: float
    max_video_side: int
    chunk_frames: int
    context_frames: int
    colorize_model: str
    weights_dir: Path | None
    onnx_colorizer_path: str
    onnx_colorizer_sha256: str
    siggraph17_sha256: str
    inpaint_model: str
    inpaint_context_frames: int
    mask_dilation: int
    torchscript_inpaint_path: str
    torchscript_inpaint_sha256: str
    torchscript_inpaint_multiple: int
    render_size: int
    temporal_strength: float
    colour_mode: str
    temporal_radius: int
    chunk_soft_time_limit: int
    chunk_time_limit: int
    finalize_time_limit: int
    chunk_window: int
    stream_poll_seconds: float
    stream_outage_seconds: float
    heartbeat_seconds: float
    lease_seconds: float
    reconcile_seconds: float
    drain_seconds: float
    max_chunk_attempts: int
    ffmpeg_timeout_seconds: int
    torch_threads: int
    gpu_processes: int
    secret_key: str
    web_host: str
    web_port: int
    migrate_on_start: bool
    s3_public_endpoint_url: str | None
    auth_required: bool
    rate_limit_per_minute: int
    rate_limit_url: str
    quota_jobs_in_flight: int
    quota_bytes_per_day: int
    session_cookie_secure: bool
    metrics_dir: Path | None
    metrics_port: int
    gpu_worker_slots: int
    cpu_worker_slots: int
    log_format: str
    broker_poll_seconds: float = 0.1
    model_cache_dir: Path | None = None
    model_precision: str = "auto"
    ffmpeg_hwaccel: str = "auto"
    retention_days: int = 0
    upload_part_bytes: int = 8 * 1024**2
    upload_expiry_hours: float = 24.0
    upload_direct: bool = True
    c2pa_sign_cert: str = ""
    c2pa_sign_key: str = ""
    c2pa_sign_alg: str = "es256"
    c2pa_tsa_url: str = ""
    events_stream_seconds: float = 30.0
    events_poll_seconds: float = 1.0
    events_max_streams: int = 2
    events_heartbeat_seconds: float = 10.0
    uploads_max_open: int = 20
    max_hint_pixels: int = 24_000_000
    track_preview_frames: int = 48
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings now from `environ` (the process environment by default)."""
    env = _Environment(os.environ if environ is None else environ)
    if bool(env.get("C2PA_SIGN_CERT")) != bool(env.get("C2PA_SIGN_KEY")):
        raise ValueError("settings C2PA_SIGN_CERT and C2PA_SIGN_KEY are set together (a signing certificate "
                         "chain and its private key) or not at all")
    data_dir = Path(env.text("TINTYPE_DATA_DIR", str(Path.cwd() / "var"))).resolve()
    return Settings(
        data_dir=data_dir,
        # PostgreSQL in deployment (postgresql+psycopg2://...), SQLite when embedded.
        database_url=env.text("DATABASE_URL", f"sqlite:///{data_dir / 'tintype.db'}"),
        # Redis in deployment: db 0 carries the task queues. Embedded: a directory queue.
        broker_url=env.text("BROKER_URL", "filesystem://"),
        # Redis db 1 in deployment holds Celery's own bookkeeping only (no task result
        # is read, and there is no chord); job state lives in the database, never here.
        result_backend=env.text("RESULT_BACKEND", f"db+sqlite:///{data_dir / 'celery-results.db'}"),
        storage_url=env.text("STORAGE_URL", f"file://{data_dir / 'objects'}"),
        s3_endpoint_url=env.get("S3_ENDPOINT_URL"),
        s3_region=env.text("AWS_DEFAULT_REGION", "us-east-1"),
        # A storage call that stalls this long is abandoned and retried (boto3 standard mode).
        s3_read_timeout=env.float("S3_READ_TIMEOUT", 60.0),
        # Result downloads from S3 are presigned URLs valid this long.
        presign_seconds=env.int("PRESIGN_SECONDS", 300),
        max_upload_bytes=env.int("MAX_UPLOAD_BYTES", 2 * 1024**3),
        max_image_pixels=env.int("MAX_IMAGE_PIXELS", 80_000_000),
        max_video_frames=env.int("MAX_VIDEO_FRAMES", 500_000),
        max_video_seconds=env.float("MAX_VIDEO_SECONDS", 4 * 3600.0),
        max_video_side=env.int("MAX_VIDEO_SIDE", 4096),
        chunk_frames=env.int("CHUNK_FRAMES", 48),
        context_frames=env.int("CONTEXT_FRAMES", 2),
        colorize_model=env.text("COLORIZE_MODEL", "effnet-lite0-unet"),
        # Video: flow-guided completion (PatchMatch for what no frame shows); images: PatchMatch.
        inpaint_model=env.text("INPAINT_MODEL", "flow"),
        # Frames each inpainting chunk borrows from either side, so known pixels propagate
        # across chunk borders.
        inpaint_context_frames=env.int("INPAINT_CONTEXT_FRAMES", 8),
        mask_dilation=env.int("MASK_DILATION", 3),
        # Model `torchscript`: an exported image + mask -> image inpainter (e.g. LaMa).
        torchscript_inpaint_path=env.text("TORCHSCRIPT_INPAINT_PATH", "").strip(),
        torchscript_inpaint_sha256=env.text("TORCHSCRIPT_INPAINT_SHA256", "").strip().lower(),
        # Its input sizes are padded to a multiple of this (how often the network downsamples).
        torchscript_inpaint_multiple=env.int("TORCHSCRIPT_INPAINT_MULTIPLE", 8),
        # Where weight files are looked up by name; unset: the ones shipped in the package.
        weights_dir=Path(env.text("WEIGHTS_DIR", "")) if env.get("WEIGHTS_DIR") else None,
        # Model `onnx`: any exported colorizer with the L -> ab contract (sha256 optional).
        onnx_colorizer_path=env.text("ONNX_COLORIZER_PATH", "").strip(),
        onnx_colorizer_sha256=env.text("ONNX_COLORIZER_SHA256", "").strip().lower(),
        # Model `siggraph17`: the release file's sha256, which operators supply.
        siggraph17_sha256=env.text("ZHANG_SIGGRAPH17_SHA256", "").strip().lower(),
        render_size=env.int("RENDER_SIZE", 256),
        # Flow-guided chroma smoothing in finalize: 0 = off, 1 = full; radius in frames.
        temporal_strength=env.float("TEMPORAL_STRENGTH", 0.8),
        # Videos: "keyframes" (coloured per shot and carried along the motion) or "per-frame".
        colour_mode=env.text("COLOUR_MODE", "keyframes"),
        temporal_radius=env.int("TEMPORAL_RADIUS", 2),
        chunk_soft_time_limit=env.int("CHUNK_SOFT_TIME_LIMIT", 1800),
        chunk_time_limit=env.int("CHUNK_TIME_LIMIT", 1900),
        # Finalize streams: it starts with the first finished chunk and waits for each next
        # one, so it fails a job ("stalled") only when one chunk keeps it waiting this long.
        finalize_time_limit=env.int("FINALIZE_TIME_LIMIT", 6 * 3600),
        # Chunks sent ahead of the one finalize assembles: intermediates in storage stay
        # below about twice this, whatever the film's length (0: send every chunk at once).
        chunk_window=_not_negative("CHUNK_WINDOW", env.int("CHUNK_WINDOW", 8)),
        # How often a waiting finalize asks the database whether its next chunk is done.
        stream_poll_seconds=env.float("STREAM_POLL_SECONDS", 0.2),
        # A database or storage outage this short is waited out inside a streaming finalize
        # (at most half of LEASE_SECONDS: its heartbeat stops too); a longer one retries
        # finalize, which computes the chunks it had assembled again.
        stream_outage_seconds=_not_negative("STREAM_OUTAGE_SECONDS", env.float("STREAM_OUTAGE_SECONDS", 30.0)),
        # Running work beats every HEARTBEAT_SECONDS; work silent for LEASE_SECONDS is
        # re-sent by the reconciler, which beat runs every RECONCILE_SECONDS.
        heartbeat_seconds=env.float("HEARTBEAT_SECONDS", 10.0),
        lease_seconds=env.float("LEASE_SECONDS", 90.0),
        reconcile_seconds=env.float("RECONCILE_SECONDS", 30.0),
        # A worker told to stop (SIGTERM, `tintype drain`) takes no new work, lets running
        # work finish for at most DRAIN_SECONDS, then gives what is left back to the queue.
        drain_seconds=env.float("DRAIN_SECONDS", 120.0),
        # A chunk whose worker dies this many times fails the job instead of looping.
        max_chunk_attempts=env.int("MAX_CHUNK_ATTEMPTS", 4),
        ffmpeg_timeout_seconds=env.int("FFMPEG_TIMEOUT_SECONDS", 120),
        # Torch threads per GPU-pool process (0: the usable cores shared out among the
        # processes; 1 each with one process per core).
        torch_threads=_not_negative("TORCH_THREADS", env.int("TORCH_THREADS", 0)),
        # Model processes of a GPU-pool worker that `tintype run`, `tintype restore` and
        # `tintype worker gpu` start (0: one per GPU, one per usable core on a CPU-only host).
        gpu_processes=_not_negative("GPU_PROCESSES", env.int("GPU_PROCESSES", 0)),
        secret_key=env.text("SECRET_KEY", DEFAULT_SECRET),
        web_host=env.text("WEB_HOST", "127.0.0.1"),
        web_port=env.int("WEB_PORT", 8000),
        # Deployments run `tintype migrate` once; the embedded mode migrates on start.
        migrate_on_start=env.bool("MIGRATE_ON_START", True),
        # Presigned download URLs are signed for this host when browsers cannot reach
        # S3_ENDPOINT_URL (e.g. http://minio:9000 inside compose).
        s3_public_endpoint_url=env.get("S3_PUBLIC_ENDPOINT_URL"),
        # Off: one local owner, no keys (the embedded default). On: every request needs
        # an API key (`tintype keys create`) and each owner sees only its own jobs.
        auth_required=env.bool("AUTH_REQUIRED", False),
        rate_limit_per_minute=env.int("RATE_LIMIT_PER_MINUTE", 600),
        # Counters shared by all web processes: Redis when the broker is Redis.
        rate_limit_url=env.text("RATE_LIMIT_URL", _default_rate_store(env)),
        quota_jobs_in_flight=env.int("QUOTA_JOBS_IN_FLIGHT", 20),
        quota_bytes_per_day=env.int("QUOTA_BYTES_PER_DAY", 50 * 1024**3),
        session_cookie_secure=env.bool("SESSION_COOKIE_SECURE", False),
        # prometheus_client's multiprocess directory (its own variable name, read by the
        # library at import): one empty directory per web or worker process group.
        metrics_dir=Path(env.text("PROMETHEUS_MULTIPROC_DIR", "")) if env.get("PROMETHEUS_MULTIPROC_DIR") else None,
        # A Celery worker serves /metrics on this port (0: it serves none; the web always does).
        metrics_port=env.int("METRICS_PORT", 0),
        # Task slots one replica of a pool brings (its Celery concurrency): the scaling
        # signal divides the pool's waiting + running work by it.
        gpu_worker_slots=max(1, env.int("GPU_WORKER_SLOTS", 1)),
        cpu_worker_slots=max(1, env.int("CPU_WORKER_SLOTS", 4)),
        # "text" (the default) or "json": one JSON object per log line, for log search.
        log_format=_choice(env, "LOG_FORMAT", "text", ("text", "json")),
        # Finished jobs (their objects and rows) are removed this many days after they
        # ended, by the reconciler; 0 keeps every job until it is deleted (DELETE).
        retention_days=_not_negative("RETENTION_DAYS", env.int("RETENTION_DAYS", 0)),
        # Staged uploads (tintype.jobs.uploads): the size of each part a client sends (at
        # least 5 MiB when parts go straight to S3, which refuses smaller ones), how long an
        # unfinished upload is kept before the reconciler aborts it, and whether an S3 store
        # takes the parts itself through presigned URLs (the bucket then needs CORS, see
        # docs/operations.md) or the web app receives them.
        upload_part_bytes=int(_positive("UPLOAD_PART_BYTES", env.int("UPLOAD_PART_BYTES", 8 * 1024**2))),
        upload_expiry_hours=_positive("UPLOAD_EXPIRY_HOURS", env.float("UPLOAD_EXPIRY_HOURS", 24.0)),
        upload_direct=env.bool("UPLOAD_DIRECT", True),
        # How often a consumer of the embedded folder broker lists its queue folder: each
        # step of a job waits up to this long for the next (kombu's default is 1 s).
        broker_poll_seconds=_positive("BROKER_POLL_SECONDS", env.float("BROKER_POLL_SECONDS", 0.1)),
        # Where GPU workers keep traced (TorchScript) models between runs; "off" traces in
        # every fresh worker. A folder that is missing or read-only only means tracing again.
        model_cache_dir=_model_cache(env, data_dir),
        # Number format of the colorizer's forward pass: auto is fp16 on CUDA, bf16 on a CPU
        # with bf16 instructions, fp32 on other CPUs (measure with bench.precision).
        model_precision=_choice(env, "MODEL_PRECISION", "auto", PRECISIONS),
        # NVENC delivery encode and NVDEC chunk decode: auto uses them when ffmpeg has them
        # and a GPU answers nvidia-smi; off is libx264 and software decode everywhere.
        ffmpeg_hwaccel=_choice(env, "FFMPEG_HWACCEL", "auto", HWACCEL_MODES),
        # C2PA provenance: the operator's signing certificate chain (PEM, signer first) and
        # private key (PEM). Both set: results carry a signed manifest; neither: an unsigned
        # sidecar manifest is made instead (tintype.provenance). TSA empty: no timestamp.
        c2pa_sign_cert=env.text("C2PA_SIGN_CERT", "").strip(),
        c2pa_sign_key=env.text("C2PA_SIGN_KEY", "").strip(),
        c2pa_sign_alg=_choice(env, "C2PA_SIGN_ALG", "es256", SIGN_ALGS),
        c2pa_tsa_url=env.text("C2PA_TSA_URL", "").strip(),
        # Live progress (Server-Sent Events): a stream holds a web thread, so each ends after
        # EVENTS_STREAM_SECONDS and the browser reconnects; it asks the database once per
        # EVENTS_POLL_SECONDS whether its job (or job list) changed.
        events_stream_seconds=_positive("EVENTS_STREAM_SECONDS", env.float("EVENTS_STREAM_SECONDS", 30.0)),
        events_poll_seconds=_positive("EVENTS_POLL_SECONDS", env.float("EVENTS_POLL_SECONDS", 1.0)),
        # Streams one web process holds open at once (a stream holds a thread: keep it under
        # gunicorn's --threads); more are answered 503 and the page polls instead.
        events_max_streams=int(_positive("EVENTS_MAX_STREAMS", env.int("EVENTS_MAX_STREAMS", 2))),
        events_heartbeat_seconds=_positive("EVENTS_HEARTBEAT_SECONDS", env.float("EVENTS_HEARTBEAT_SECONDS", 10.0)),
        uploads_max_open=int(_positive("UPLOADS_MAX_OPEN", env.int("UPLOADS_MAX_OPEN", 20))),
        max_hint_pixels=int(_positive("MAX_HINT_PIXELS", env.int("MAX_HINT_PIXELS", 24_000_000))),
        # The painter's track preview follows a box through at most this many frames (it must be quick).
        track_preview_frames=int(_positive("TRACK_PREVIEW_FRAMES", env.int("TRACK_PREVIEW_FRAMES", 48))),
    )


def _choice(env: _Environment, name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.text(name, default).strip().lower()
    if value not in choices:
        raise ValueError(f"setting {name} must be one of {', '.join(choices)}, got {value!r}")
    return value


Number = TypeVar("Number", int, float)


def _not_negative(name: str, value: Number) -> Number:
    if value < 0:
        raise ValueError(f"setting {name} must be 0 or more, got {value}")
    return value


def _positive(name: str, value: float) -> float:
    if value <= 0:
        raise ValueError(f"setting {name} must be more than 0, got {value}")
    return value


def _model_cache(env: _Environment, data_dir: Path) -> Path | None:
    raw = env.text("MODEL_CACHE_DIR", str(data_dir / "model-cache")).strip()
    return None if raw.lower() in ("off", "none", "0") else Path(raw).expanduser()


def _default_rate_store(env: _Environment) -> str:
    broker = env.text("BROKER_URL", "filesystem://")
    return broker if broker.startswith("redis") else "memory://"
