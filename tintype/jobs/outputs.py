"""Files a job makes beside its result: an archival master, a provenance manifest, ...

Each is stored under the job's prefix (`keys.extra_output_key`, so removing the job removes
it) and recorded on the job row by name, so the API, the job page and the CLI list and
serve them all the same way, and a new kind of output needs no new column or route.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class Output:
    """One file made beside the result; `suffix` names the download (`<input stem>-<suffix>`)."""

    key: str
    content_type: str
    bytes: int
    suffix: str
    label: str  # what the job page calls it, e.g. "Archival master (FFV1 10-bit, MKV)"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_name(name: str) -> str:
    """Output names appear in URLs and object keys: lower-case words joined by dashes."""
    if not name or not set(name) <= NAME_CHARS:
        raise ValueError(f"output name {name!r}: use lower-case letters, digits and dashes")
    return name


def record(outputs: Mapping[str, Output]) -> dict[str, dict[str, Any]]:
    """The value of the job row's `outputs` column for these outputs."""
    return {check_name(name): output.to_json() for name, output in outputs.items()}


def of(job: Any) -> dict[str, Output]:
    """A job row's outputs, by name (none for a job made before outputs existed)."""
    return {name: Output(**entry) for name, entry in (job.outputs or {}).items()}


def keys_of(outputs: Mapping[str, Output]) -> list[str]:
    """The object keys of these outputs, for a finalize that must discard what it made."""
    return [output.key for output in outputs.values()]


__all__ = ["Output", "check_name", "keys_of", "of", "record"]
