"""Entry point: the same as the `p2pbot` console script (`.venv/bin/p2pbot COMMAND`)."""

from __future__ import annotations

import sys

from p2pbot.cli import main

if __name__ == "__main__":
    sys.exit(main())
