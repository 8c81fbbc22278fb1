"""A writer thread: frames handed over through a short queue, written while the caller
computes the next ones.

A chunk's frames go to ffmpeg through a pipe; writing one (and converting it to 4:2:0
first) takes the caller's time unless a thread does it. The reader side is
`media.delivery.Prefetch`. Errors of the thread re-raise in the caller, at its next
`put` or at the end, so whoever runs the pipeline sees them as its own.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, TypeVar

Item = TypeVar("Item")


class WriteBehind(Generic[Item]):
    """Calls `write(item)` for each item `put`, in order, from a thread, `depth` items
    behind at most (so memory stays bounded). Use it as a context manager: a clean exit
    waits for every item to be written and re-raises the thread's error, if any; an exit
    by an exception stops the thread without waiting (the caller then kills what it was
    writing to, which unblocks it)."""

    DONE = object()

    def __init__(self, write: Callable[[Item], None], depth: int = 8, name: str = "write-behind") -> None:
        self.write = write
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not self.DONE:
            if self.stopped.is_set():
                return
            try:
                self.write(item)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                self.error = exc
                self.stopped.set()
                return

    def put(self, item: Item) -> None:
        """Hand one item over; blocks while `depth` are waiting, raises the thread's error."""
        while True:
            self._raise()
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until everything handed over is written; raises the thread's error."""
        while self.thread.is_alive():
            try:
                self.queue.put(self.DONE, timeout=0.2)
                break
            except queue.Full:
                continue
        self.thread.join()
        self._raise()

    def stop(self) -> None:
        """Stop writing what is left, without waiting (see the class)."""
        self.stopped.set()
        try:
            self.queue.put_nowait(self.DONE)
        except queue.Full:
            pass

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error

    def __enter__(self) -> "WriteBehind[Item]":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.stop()
