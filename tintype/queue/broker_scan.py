"""Which task messages the broker holds right now: waiting in a queue or delivered and
not yet acknowledged.

The reconciler re-sends work only when its message is gone (a broker that lost its
data, a message dropped while a worker died), so it must look inside the broker instead of
guessing from how long a job has waited: a chunk may rightly wait hours behind other
jobs. Transports it cannot read give None, and the reconciler falls back to heartbeats.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)
Message = tuple[str, tuple]  # (task name, positional arguments)
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)  # kombu's default steps; step 0 is the plain queue name


def task_of(payload: dict[str, Any]) -> Message | None:
    """(task, args) of a kombu message payload, or None for anything else."""
    try:
        task = payload["headers"]["task"]
        body = payload["body"]
        if payload.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return task, tuple(args)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def held_messages(broker_url: str, queues: Iterable[str], options: dict[str, Any]) -> set[Message] | None:
    """Every task message the broker holds for `queues`, read in one consistent view."""
    if broker_url.startswith(("redis://", "rediss://")):
        return _redis_messages(broker_url, list(queues))
    folder = options.get("data_folder_in")
    if broker_url.startswith(("filesystem://", "tintypefs://")) and folder:
        return _folder_messages(Path(folder))
    return None


def _redis_messages(url: str, queues: list[str]) -> set[Message]:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    names = [q for queue in queues for q in (queue, *(f"{queue}{PRIORITY_SEPARATOR}{p}" for p in PRIORITY_STEPS))]
    try:
        with client.pipeline(transaction=True) as pipe:  # MULTI: no message is seen moving
            for name in names:
                pipe.lrange(name, 0, -1)
            pipe.hvals("unacked")
            *lists, unacked = pipe.execute()
    finally:
        client.close()
    payloads = [json.loads(raw) for items in lists for raw in items]
    payloads += [json.loads(raw)[0] for raw in unacked]
    return {m for m in map(task_of, payloads) if m is not None}


def _folder_messages(folder: Path) -> set[Message]:
    found: set[Message] = set()
    for path in folder.glob("*.msg"):
        try:
            message = task_of(json.loads(path.read_bytes()))
        except (OSError, ValueError):
            continue  # taken by a worker while we looked
        if message is not None:
            found.add(message)
    return found


SENT_AT = "tintype_sent_at"  # message header: when a tintype process published it (Unix time)


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting in one queue (not yet delivered) and when the oldest was sent."""

    waiting: int
    oldest_sent_at: float | None  # None: empty, or sent by something that did not stamp it

    def age(self, now: float) -> float | None:
        """Seconds the oldest message has waited at Unix time `now`, if known."""
        return None if self.oldest_sent_at is None else round(max(0.0, now - self.oldest_sent_at), 3)


def queue_depths(broker_url: str, queues: Iterable[str], options: dict[str, Any]) -> dict[str, QueueDepth] | None:
    """Waiting messages per queue, or None for a transport this module cannot read."""
    if broker_url.startswith(("redis://", "rediss://")):
        return _redis_depths(broker_url, list(queues))
    folder = options.get("data_folder_in")
    if broker_url.startswith(("filesystem://", "tintypefs://")) and folder:
        return {queue: _folder_depth(Path(folder), queue) for queue in queues}
    return None


def sent_at(payload: dict[str, Any]) -> float | None:
    value = payload.get("headers", {}).get(SENT_AT) if isinstance(payload, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _redis_depths(url: str, queues: list[str]) -> dict[str, QueueDepth]:
    """LLEN and the tail (kombu pushes left and pops right: the tail is the oldest) of
    each queue's lists, one per priority step, in one round trip."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=10)
    lists = {queue: [queue, *(f"{queue}{PRIORITY_SEPARATOR}{p}" for p in PRIORITY_STEPS)] for queue in queues}
    try:
        with client.pipeline(transaction=True) as pipe:
            for names in lists.values():
                for name in names:
                    pipe.llen(name)
                    pipe.lindex(name, -1)
            replies = iter(pipe.execute())
    finally:
        client.close()
    depths = {}
    for queue, names in lists.items():
        pairs = [(next(replies), next(replies)) for _ in names]
        stamps = [s for _, tail in pairs if tail and (s := sent_at(_json(tail))) is not None]
        depths[queue] = QueueDepth(sum(int(n) for n, _ in pairs), min(stamps, default=None))
    return depths


def _folder_depth(folder: Path, queue: str) -> QueueDepth:
    """The folder transport names each message `<monotonic ms>_<uuid>.<queue>.msg` and
    consumers take them in name order, so the first name is the oldest message."""
    names = sorted(path.name for path in folder.glob(f"*.{queue}.msg"))
    for name in names:  # the first one still there (a worker may take it while we look)
        try:
            return QueueDepth(len(names), sent_at(_json((folder / name).read_bytes())))
        except OSError:
            continue
    return QueueDepth(len(names), None)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
