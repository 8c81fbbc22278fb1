"""Resume state of a collection: which items are done, kept in OUTDIR.

One JSON line per finished item, appended and flushed as each result is written (after
it is renamed into place), so an interrupted run (Ctrl-C, a power cut) leaves a ledger
that names only results that exist; a torn last line is ignored. An item is done when
its entry's key (size, modification time and the run's options) still matches and its
result is still there; anything else is restored again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LEDGER_NAME = ".tintype-ledger.jsonl"


@dataclass(frozen=True)
class Entry:
    rel: str
    output: str
    key: str
    quality: str = ""


def options_digest(form: dict[str, Any], extra: str = "") -> str:
    """A short digest of what the run asks for, part of each item's key (other options:
    another result, so the item is restored again)."""
    text = json.dumps(form, sort_keys=True, default=str) + extra
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def item_key(source: Path, options: str) -> str:
    """What must not change for a result to stay valid: the input's size and
    modification time (nanoseconds) and the options digest."""
    st = source.stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{options}"


class Ledger:
    """The done items of OUTDIR, read once, appended to as items finish."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / LEDGER_NAME
        self.entries: dict[str, Entry] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = Entry(**json.loads(line))
                except (ValueError, TypeError):
                    continue  # a line torn by an interruption
                self.entries[entry.rel] = entry
            self._compact()

    def _compact(self) -> None:
        """Rewrite the ledger with one line per item (redone items appended lines), renamed
        into place so an interruption leaves the old one."""
        part = self.path.with_name(self.path.name + ".part")
        part.write_text("".join(json.dumps(e.__dict__) + "\n" for e in self.entries.values()), encoding="utf-8")
        os.replace(part, self.path)

    def done(self, rel: str, key: str, outdir: Path) -> Entry | None:
        """The entry when the item is done and unchanged and its result is still there."""
        entry = self.entries.get(rel)
        if entry is None or entry.key != key or not (outdir / entry.output).is_file():
            return None
        return entry

    def made(self, output: str) -> bool:
        """Whether an earlier run wrote this result (so replacing it needs no --force)."""
        return any(entry.output == output for entry in self.entries.values())

    def record(self, entry: Entry) -> None:
        self.entries[entry.rel] = entry
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry.__dict__) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
