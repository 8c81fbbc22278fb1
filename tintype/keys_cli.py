"""`tintype keys`: operators create, list and revoke API keys against DATABASE_URL."""

from __future__ import annotations

import argparse

from tintype.settings import load_settings
from tintype.storage import apikeys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="make a key; its token is printed once and never stored")
    create.add_argument("--owner", required=True, help="who the key's jobs belong to (a-z 0-9 . _ -)")
    create.add_argument("--operator", action="store_true", help="may see, download and cancel every owner's jobs")
    create.add_argument("--label", default="", help="a note to recognise the key by")
    create.add_argument("--per-minute", type=int, help="requests per minute (default RATE_LIMIT_PER_MINUTE)")
    create.add_argument("--jobs-in-flight", type=int, help="queued + running jobs (default QUOTA_JOBS_IN_FLIGHT)")
    create.add_argument("--bytes-per-day", type=int, help="uploaded bytes per 24 h (default QUOTA_BYTES_PER_DAY)")
    actions.add_parser("list", help="show keys (ids, owners, roles; never the tokens)")
    revoke = actions.add_parser("revoke", help="stop a key from working, at once")
    revoke.add_argument("key_id", help="the key's id, as `tintype keys list` shows it")


def run(args: argparse.Namespace) -> int:
    url = load_settings().database_url
    if args.action == "create":
        return _create(url, args)
    if args.action == "list":
        for key in apikeys.list_keys(url):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            print(f"{key.id}  {key.owner:<20} {key.role:<9} {state:<18} last used {used}  {key.label}")
        return 0
    if apikeys.revoke(url, args.key_id):
        print(f"key {args.key_id} revoked")
        return 0
    print(f"tintype keys: no active key {args.key_id!r}", flush=True)
    return 2


def _create(url: str, args: argparse.Namespace) -> int:
    for name in ("per_minute", "jobs_in_flight", "bytes_per_day"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            print(f"tintype keys: --{name.replace('_', '-')} must be at least 1")
            return 2
    limits = apikeys.Limits(args.per_minute, args.jobs_in_flight, args.bytes_per_day)
    try:
        key, token = apikeys.create_key(url, args.owner, args.operator, args.label, limits)
    except ValueError as exc:
        print(f"tintype keys: {exc}")
        return 2
    print(f"created key {key.id} for owner {key.owner} ({key.role}); the token is shown only now:")
    print(token)
    return 0
