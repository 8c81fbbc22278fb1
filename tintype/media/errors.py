"""Errors about a user's media, phrased so the user can act on them."""

from __future__ import annotations


class MediaError(ValueError):
    """The media cannot be processed; `code` is stable, the message explains."""

    code = "bad_media"
    status = 422

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotMedia(MediaError):
    code = "not_media"
    status = 415


class UnsupportedMedia(MediaError):
    code = "unsupported_media"
    status = 415


class CorruptMedia(MediaError):
    code = "corrupt_media"
    status = 422


class MediaTooLarge(MediaError):
    code = "media_too_large"
    status = 413


class ToolFailed(RuntimeError):
    """ffmpeg or ffprobe failed on input that had already been accepted."""


class SourceUnreachable(ToolFailed, ConnectionError):
    """ffmpeg or ffprobe could not reach a network input (refused, no route, reset, timed
    out, a 5xx answer): the media is not at fault, so callers retry as for any connection
    error."""


class ModelFailure(RuntimeError):
    """A model could not be loaded or run (missing weights, bad checksum, bad output)."""
