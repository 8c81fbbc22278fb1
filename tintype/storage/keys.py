"""Where each object of a job lives. Deterministic, so a redelivered task finds its work."""

from __future__ import annotations


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


def input_key(job_id: str) -> str:
    return f"jobs/{job_id}/input"


def mask_key(job_id: str) -> str:
    return f"jobs/{job_id}/mask.png"


def reference_key(job_id: str) -> str:
    return f"jobs/{job_id}/reference.png"


def work_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/work/"


def chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/work/chunk-{index:06d}.mkv"


def colour_borders_key(job_id: str) -> str:
    """The chroma entering each chunk of a film coloured from keyframes (gpu.plan_colour)."""
    return f"jobs/{job_id}/work/colour-borders.npz"


def models_used_key(job_id: str) -> str:
    """The models (and weight sha256) a video's chunks ran, for finalize's C2PA manifest."""
    return f"jobs/{job_id}/work/models-used.json"


def output_key(job_id: str, extension: str) -> str:
    return f"jobs/{job_id}/output.{extension}"


def extra_output_key(job_id: str, name: str, extension: str) -> str:
    """A file made beside the result (tintype.jobs.outputs), e.g. the archival master."""
    return f"jobs/{job_id}/{name}.{extension}"


def compare_key(job_id: str) -> str:
    return f"jobs/{job_id}/compare.jpg"


def preview_key(job_id: str) -> str:
    return f"jobs/{job_id}/preview.jpg"


def frame_masks_key(job_id: str) -> str:
    """The user's per-frame masks, normalised to lossless greyscale video."""
    return f"jobs/{job_id}/masks.mkv"


def tracked_boxes_key(job_id: str) -> str:
    return f"jobs/{job_id}/boxes-tracked.json"


def used_mask_chunk_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/work/mask-{index:06d}.mkv"


def used_masks_key(job_id: str, extension: str) -> str:
    """The masks the job actually filled (all sources, dilated): .mkv for video, .png for images."""
    return f"jobs/{job_id}/masks-used.{extension}"


def mask_poster_key(job_id: str) -> str:
    return f"jobs/{job_id}/masks-used.jpg"


def timestamps_key(job_id: str) -> str:
    """The input's frame times (JSON seconds) from intake's probe. Kept as long as the
    input, so a recolour job reuses them without probing the film again."""
    return f"jobs/{job_id}/timestamps.json"


def keyframe_key(job_id: str, frame: int) -> str:
    """A keyframe: RGB PNG at the frame's size, upright, named by its frame number."""
    return f"jobs/{job_id}/keyframes/{frame:06d}.png"


def keyframe_thumbnail_key(job_id: str, frame: int) -> str:
    return f"jobs/{job_id}/keyframes/{frame:06d}.jpg"


def upload_prefix(upload_id: str) -> str:
    """A staged upload's objects (tintype.jobs.uploads), outside every job's prefix."""
    return f"uploads/{upload_id}/"


def upload_object_key(upload_id: str) -> str:
    """The assembled file of a staged upload (an S3 multipart upload completes here)."""
    return f"uploads/{upload_id}/object"


def upload_part_key(upload_id: str, number: int) -> str:
    """One part of a staged upload received by the web app (not S3 directly)."""
    return f"uploads/{upload_id}/parts/{number:05d}"
