"""`tintype workers` lists the worker processes; `tintype drain HOST` drains them.

Both read and write the `workers` table of DATABASE_URL (tintype.storage.workers), so
they work from any machine that reaches the database, with either broker.
"""

from __future__ import annotations

import argparse
import time

from tintype.settings import load_settings
from tintype.storage import workers as registry
from tintype.storage.models import utcnow


def add_workers_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object per worker")


def add_drain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("host", help="a host name (every worker on it) or one worker's name, as `tintype workers` "
                                     "shows them")
    parser.add_argument("--wait", type=float, metavar="SECONDS", default=0,
                        help="wait up to SECONDS for the workers to exit (0: return at once)")


def run_workers(args: argparse.Namespace) -> int:
    settings = load_settings()
    now = utcnow()
    rows = registry.list_workers(settings.database_url)
    if args.json:
        import json

        for w in rows:
            print(json.dumps({"name": w.name, "host": w.host, "pool": w.pool, "pid": w.pid,
                              "seen_seconds_ago": round((now - w.seen_at).total_seconds(), 1),
                              "state": _state(w, now, settings.lease_seconds), "running": list(w.running.values())}))
        return 0
    if not rows:
        print("no workers have registered")
        return 0
    print(f"{'WORKER':<28} {'HOST':<20} {'POOL':<8} {'STATE':<9} {'LAST BEAT':<10} RUNNING")
    for w in rows:
        beat = f"{(now - w.seen_at).total_seconds():.0f} s ago"
        running = "; ".join(_work(item) for item in w.running.values()) or "-"
        print(f"{w.name:<28} {w.host:<20} {w.pool:<8} {_state(w, now, settings.lease_seconds):<9} {beat:<10} "
              f"{running}")
    return 0


def run_drain(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    names = registry.request_drain(url, args.host)
    if not names:
        print(f"tintype drain: no worker on {args.host!r} (see `tintype workers`)")
        return 2
    for name in names:
        print(f"asked {name} to drain: it takes no new work and exits after its running work "
              "(at most DRAIN_SECONDS, then that work goes back to the queue)")
    deadline = time.monotonic() + args.wait
    while args.wait and time.monotonic() < deadline:
        if not {w.name for w in registry.list_workers(url)} & set(names):
            print("drained")
            return 0
        time.sleep(0.5)
    return 0 if not args.wait else 1


def _state(worker: registry.WorkerView, now, lease_seconds: float) -> str:
    if (now - worker.seen_at).total_seconds() > lease_seconds:
        return "silent"  # its beat stopped: the process died without removing its row
    if worker.draining_since or worker.drain_requested_at:
        return "draining"
    return "busy" if worker.running else "idle"


def _work(item: dict) -> str:
    what = f"{item.get('task')} job {item.get('job')}"
    if item.get("chunk") is not None:
        what += f" chunk {item['chunk']}"
    return what + f" since {item.get('since', '?')}"
