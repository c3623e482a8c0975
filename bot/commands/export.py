"""`export`: the recording of a time span as a portable file (JSON lines, gzip), pseudonymised."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.commands.common import EXIT_OK, ConfigError, fail, load_settings, open_store
from bot.commands.history import parse_when
from bot.recording.data import Encoder, Pseudonyms, write
from state.recording import RecordingLog


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `export`."""
    p.add_argument("--from", dest="since", default="1d",
                   help="from this time: ISO date/time (UTC) or a span back, like 6h (default 1d)")
    p.add_argument("--to", dest="until", default=None, help="up to this time (default: now)")
    p.add_argument("--out", type=Path, default=None,
                   help="the file to write (default: p2pbot-recording-<from>.jsonl.gz here)")
    p.add_argument("--raw-ids", action="store_true",
                   help="keep user ids, nicknames and ad numbers as they are (default: "
                        "pseudonymised with a salt that is not kept)")
    p.add_argument("--db", type=Path, default=None, help="the store (default: P2PBOT_DB)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `export`: exit 2 on a bad span or a missing store, nothing written."""
    try:
        db = args.db or load_settings().db
        if not Path(db).exists():
            raise ConfigError(f"no store at {db} (set P2PBOT_DB or --db): nothing recorded yet")
        args.db = Path(db)
        out, count = asyncio.run(_main(args))
    except ConfigError as exc:
        return fail(exc)
    print(f"wrote {count} lines to {out}", file=sys.stderr)
    return EXIT_OK


async def _main(args: argparse.Namespace) -> tuple[Path, int]:
    db = args.db
    now = time.time()
    since, until = parse_when(args.since, now), parse_when(args.until, now)
    if since is not None and until is not None and since > until:
        raise ConfigError(f"--from {args.since} is after --to {args.until}")
    stamp = datetime.fromtimestamp(since or now, UTC).strftime("%Y%m%d-%H%M")
    out = args.out or Path(f"p2pbot-recording-{stamp}.jsonl.gz")
    enc = Encoder(Pseudonyms(raw=args.raw_ids))
    lines: list[dict[str, Any]] = []
    async with open_store(Path(db)) as store:
        async for e in RecordingLog(store).read(since, until):
            lines += enc.lines(e.at, e.kind, e.body)
    if not lines:
        raise ConfigError(f"nothing recorded in {db} between {args.since} and "
                          f"{args.until or 'now'} ([recording] enabled = true records while "
                          "`run` or `demo` runs)")
    header = {"from": lines[0]["at"], "to": lines[-1]["at"], "pseudonymised": not args.raw_ids,
              "exported_at": now, "rows": len(lines)}
    try:
        count = write(out, header, lines)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc}") from None
    return out, count
