"""systemd notifications (`sd_notify`) over $NOTIFY_SOCKET, without a dependency.

`Type=notify` units wait for READY=1; `WatchdogSec=` units are restarted when
WATCHDOG=1 stops arriving. Outside systemd (no $NOTIFY_SOCKET) every call is a
no-op that returns False.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping

from loguru import logger


def _address(environ: Mapping[str, str]) -> str | None:
    path = environ.get("NOTIFY_SOCKET")
    if not path or not (path.startswith("/") or path.startswith("@")):
        return None  # vsock and other families are not used by ordinary units
    return "\0" + path[1:] if path.startswith("@") else path


def notify(*lines: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `KEY=VALUE` lines to systemd; False when not under systemd or the send failed."""
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode())
    except OSError as exc:
        logger.debug("sd_notify failed: {}", exc)
        return False
    return True


def ready(status: str = "") -> bool:
    """READY=1 (and a STATUS= line for `systemctl status`)."""
    return notify("READY=1", *([f"STATUS={status}"] if status else []))


def reloading() -> bool:
    """RELOADING=1 with the monotonic time systemd asks for; send ready() when done."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def stopping() -> bool:
    """STOPPING=1."""
    return notify("STOPPING=1")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when not asked for."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2


async def watchdog(healthy: Callable[[], bool] = lambda: True,
                   environ: Mapping[str, str] | None = None) -> None:
    """Ping WATCHDOG=1 at half of WatchdogSec while `healthy()`; returns at once when not asked."""
    interval = watchdog_interval(environ)
    if interval is None:
        return
    logger.debug("systemd watchdog: a ping every {:.1f} s", interval)
    while True:
        if healthy():
            notify("WATCHDOG=1", environ=environ)
        await asyncio.sleep(interval)
