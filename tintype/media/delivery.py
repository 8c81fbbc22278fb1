"""Streaming delivery: frames in output order → temporal smoothing → the delivery encoder.

This is finalize's frame loop without Celery, storage keys or settings: a reader thread
runs the frame source a few frames ahead (so downloading and decoding overlap with
smoothing), the smoother holds a few frames, and the encoder streams the MP4 to a sink
as it is made, so neither memory nor disk grows with the film. The pipeline and
bench.temporal both run this one loop, so the benchmark measures what users get.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Protocol

from tintype.media.probe import VideoFacts
from tintype.media.temporal import ChromaSmoother
from tintype.media.video import DeliveryEncoder, DeliveryOptions
from tintype.media.yuv import Yuv420

DEFAULT_DELIVERY = DeliveryOptions()

FrameSource = Callable[[], Iterator[Yuv420]]


class Prefetch:
    """Runs a frame generator in a thread a few frames ahead; its exceptions re-raise in
    the consumer, and `stop` ends the thread early when the consumer gives up."""

    DONE = object()

    def __init__(self, make: FrameSource, depth: int = 8) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(make,), daemon=True)
        self.thread.start()

    def _run(self, make: FrameSource) -> None:
        try:
            for item in make():
                if not self._put(item):
                    return
            self._put(self.DONE)
        except BaseException as exc:
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Yuv420]:
        while (item := self.queue.get()) is not self.DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)


class FrameSink(Protocol):
    """A second consumer of the output frames (the archival master, media.master)."""

    def write(self, frame: Yuv420) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class Delivery:
    """Frames in output order → the smoother → the encoder (and `also`, e.g. the
    master); keeps the middle output frame for the before/after poster."""

    def __init__(self, encoder: DeliveryEncoder, smoother: ChromaSmoother, frames: int,
                 also: FrameSink | None = None, mark: Callable[[Yuv420], Yuv420] | None = None) -> None:
        self.encoder, self.smoother, self.middle, self.also = encoder, smoother, frames // 2, also
        self.mark = mark
        self.written, self.poster = 0, None

    def push(self, frame: Yuv420) -> None:
        self._write(self.smoother.push(frame))

    def finish(self) -> None:
        self._write(self.smoother.flush())
        self.encoder.close()
        if self.also is not None:
            self.also.close()

    def _write(self, frames: list[Yuv420]) -> None:
        for frame in frames:
            shown = frame if self.mark is None else self.mark(frame)
            if self.written == self.middle:
                self.poster = shown
            self.encoder.write(shown)
            if self.also is not None:  # the master: never marked
                self.also.write(frame)
            self.written += 1


def deliver(frames: FrameSource, facts: VideoFacts, audio_source: str | None, sink: Callable[[bytes], None],
            smoother: ChromaSmoother, options: DeliveryOptions = DEFAULT_DELIVERY,
            timeout: float = 6 * 3600, depth: int = 8, also: FrameSink | None = None,
            mark: Callable[[Yuv420], Yuv420] | None = None) -> Delivery:
    """Encode every frame of `frames` (read `depth` ahead) through `smoother` into an MP4
    that flows to `sink`, with the audio of `audio_source`, and hand each output frame to
    `also` too. `mark` (a visible mark) is drawn on the delivery's frames only, after the
    smoother, so its edges never bleed along the motion. On any error the reader and the
    encoders are stopped before it re-raises; the caller discards what the sinks got."""
    encoder = DeliveryEncoder(facts, audio_source, sink=sink, options=options, timeout=timeout)
    delivery = Delivery(encoder, smoother, facts.frames, also, mark)
    reader = Prefetch(frames, depth)
    try:
        for frame in reader:
            delivery.push(frame)
        delivery.finish()
    except BaseException:
        reader.stop()
        encoder.abort()
        if also is not None:
            also.abort()
        raise
    return delivery


__all__ = ["Delivery", "FrameSink", "FrameSource", "Prefetch", "deliver"]
