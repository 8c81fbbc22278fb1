"""A background heartbeat for long tasks.

The reconciler judges work by its heartbeat, not by how far it got: a chunk of 4K
frames may take minutes between two visible steps, but its heartbeat keeps ticking
while the worker lives, and stops within seconds when the worker dies.
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger(__name__)


@contextmanager
def heartbeat(beat: Callable[[], None], every: float) -> Iterator[None]:
    """Call `beat` every `every` seconds while the block runs; a failed beat is logged,
    never raised (a database blip must not kill the work it reports on)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every):
            try:
                beat()
            except Exception:  # noqa: BLE001 - reported, and the next beat tries again
                log.warning("heartbeat failed", exc_info=True)

    thread = threading.Thread(target=run, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=every + 5)
