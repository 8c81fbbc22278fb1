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
