"""The one error a refused submission raises, whatever refused it."""

from __future__ import annotations

from tintype.media.errors import MediaError


class IntakeError(ValueError):
    """A submission was refused; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status

    @classmethod
    def from_media(cls, exc: MediaError, prefix: str = "") -> "IntakeError":
        return cls(prefix + str(exc), exc.code, exc.status)
