"""`backup PATH`: a consistent copy of the store, safe while the daemon runs (no lock taken)."""

from __future__ import annotations

import argparse
import sqlite3
import sys

from bot.commands import options
from bot.commands.common import EXIT_CONFIG, EXIT_OK, ConfigError, fail, load_settings
from state.maintenance import StoreDamaged, backup

add_arguments = options.backup  # the options live in a light module (fast --help)


def run(args: argparse.Namespace) -> int:
    """Write the copy; 0 when done, 2 when the store is missing or damaged."""
    try:
        db = args.db or load_settings().db
    except ConfigError as exc:
        return fail(exc)
    try:
        written = backup(db, args.path)
    except (FileNotFoundError, ValueError, StoreDamaged, sqlite3.Error, OSError) as exc:
        # sqlite's and the OS's own words often name no file: both paths are said here
        print(f"backup of {db} to {args.path} failed: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"backup of {db} written to {written} ({written.stat().st_size} bytes)")
    return EXIT_OK
