"""`python run.py ARGS` for the tests, forked from a process that has already imported the bot.

A test that runs the bot as a process (the daemon under signals, a command that must exit 2)
paid about half a second of CPU for each start, nearly all of it imports (aiohttp, pydantic's
models, loguru); the suite starts about seventy such processes. Here one process per test
worker, the zygote, imports what `run` and the other commands need once and forks a child
for each start: the child takes the test's arguments, environment, working directory and
standard streams, and runs `p2pbot.cli.main` as `run.py` does, in a real process of its own
(its own pid, signals, exit status, files and umask).

What a fork does not repeat is the interpreter's start and the imports: a test of those (the
console script, `run.py` itself, what `--help` imports) starts a real interpreter instead
(tests/test_cli.py). The environment a module reads when it is imported is the zygote's;
the bot reads its own (P2PBOT_*, TZ, NOTIFY_SOCKET, ...) when it runs, which the child
sets first.

The protocol (a Unix socket per start): the test sends a JSON request (argv, env, cwd)
with the child's stdin, stdout and stderr as file descriptors (SCM_RIGHTS); the zygote
forks and answers the pid, then the child's exit status (negative: the signal) when it
ends. The zygote ends when its stdin closes: when the test worker ends, however it ends.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
PRELOAD = ("p2pbot.cli", "bot.app", "bot.commands.run", "bot.commands.check_config", "bot.logs")


# --- the zygote ----------------------------------------------------------------------------------


def serve(path: str) -> None:
    """Import the bot, listen on `path`, fork a child per request until stdin closes."""
    for module in PRELOAD:
        __import__(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    select = selectors.DefaultSelector()
    select.register(listener, selectors.EVENT_READ, "accept")
    select.register(wake_r, selectors.EVENT_READ, "child")
    select.register(sys.stdin.fileno(), selectors.EVENT_READ, "parent")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        for key, _ in select.select():
            if key.data == "parent" and not os.read(sys.stdin.fileno(), 1024):
                return
            if key.data == "child":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 1024)
                _reap(children)
            if key.data == "accept":
                conn, _ = listener.accept()
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    for other in children.values():
                        other.close()
                    _child(json.loads(data), fds, (wake_r, wake_w))
                for fd in fds:
                    os.close(fd)
                children[pid] = conn
                conn.sendall(f"{pid}\n".encode())
        _reap(children)


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


def _child(request: dict[str, Any], fds: list[int], wake: tuple[int, int]) -> None:
    """In the fork: become `python run.py ARGV` and never return."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in wake:
        os.close(fd)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    time.tzset()
    sys.argv = [str(ROOT / "run.py"), *request["argv"]]
    if request.get("hold"):  # started ahead, it waits for its go: a line on stdin
        while os.read(0, 1) not in (b"\n", b""):
            pass
    code = 1
    try:
        from p2pbot.cli import main

        code = _status(main(request["argv"]))
    except SystemExit as exc:
        code = _status(exc.code)
    except KeyboardInterrupt:  # as the interpreter ends on an uncaught one: by SIGINT
        traceback.print_exc()
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:  # noqa: BLE001 - what the interpreter prints for an uncaught error
        traceback.print_exc()
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    _flush()
    os._exit(code)


def _status(code: object) -> int:
    """The exit status for `sys.exit(code)`, as the interpreter makes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


# --- the tests' side -----------------------------------------------------------------------------


class _Zygote:
    """The worker's zygote, started on first use."""

    proc: subprocess.Popen[bytes] | None = None
    path = ""

    @classmethod
    def address(cls) -> str:
        if cls.proc is None or cls.proc.poll() is not None:
            cls.path = os.path.join(tempfile.mkdtemp(prefix="p2pbot-zygote-"), "sock")
            cls.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.zygote", cls.path], cwd=ROOT, stdin=PIPE,
                stdout=PIPE)
            assert cls.proc.stdout is not None
            line = cls.proc.stdout.readline()
            assert line == b"ready\n", f"the zygote did not start: {line!r}"
            atexit.register(cls.close)
        return cls.path

    @classmethod
    def close(cls) -> None:
        if cls.proc is not None and cls.proc.poll() is None:
            assert cls.proc.stdin is not None
            cls.proc.stdin.close()
            cls.proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            os.unlink(cls.path)
            os.rmdir(os.path.dirname(cls.path))


class Forked:
    """A forked `run.py` process, used as asyncio.subprocess.Process is."""

    def __init__(self, pid: int, control: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 stdin: asyncio.StreamWriter | None, stdout: asyncio.StreamReader | None,
                 stderr: asyncio.StreamReader | None) -> None:
        self.pid = pid
        self.returncode: int | None = None  # set as soon as it ends, as asyncio's is
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self._ended = asyncio.ensure_future(self._watch(control, writer))

    async def _watch(self, control: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await control.readline()
            if not line:
                raise RuntimeError(f"the zygote ended before its child {self.pid} did")
            self.returncode = int(line)
        finally:
            writer.close()

    async def wait(self) -> int:
        """Its exit status (negative: the signal that ended it)."""
        await asyncio.shield(self._ended)
        assert self.returncode is not None
        return self.returncode

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:  # noqa: A002
        """Write `input`, read stdout and stderr to their end, wait for the exit."""
        if self.stdin is not None:
            if input:
                self.stdin.write(input)
                await self.stdin.drain()
            self.stdin.close()

        async def read(stream: asyncio.StreamReader | None) -> bytes:
            return await stream.read() if stream is not None else b""

        out, err = await asyncio.gather(read(self.stdout), read(self.stderr))
        await self.wait()
        return out, err

    def send_signal(self, sig: int) -> None:
        """Send `sig`, unless it has ended."""
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)


async def spawn(*argv: str, env: dict[str, str], cwd: str | Path, stdin: Any = DEVNULL,
                stdout: Any = DEVNULL, stderr: Any = DEVNULL, hold: bool = False) -> Forked:
    """Start `python run.py ARGV` (see the module's text). stdin, stdout, stderr: PIPE,
    DEVNULL or an open file, as asyncio.create_subprocess_exec takes them. `hold`: the
    process waits for a line on its stdin (a PIPE) before it runs."""
    loop = asyncio.get_running_loop()
    theirs: list[int] = []
    ours: list[tuple[str, int]] = []
    for name, how in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
        if how == PIPE:
            r, w = os.pipe()
            theirs.append(r if name == "stdin" else w)
            ours.append((name, w if name == "stdin" else r))
        elif how == DEVNULL or how is None:
            theirs.append(os.open(os.devnull, os.O_RDWR))
        else:
            theirs.append(os.dup(how if isinstance(how, int) else how.fileno()))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(_Zygote.address())
        request = json.dumps({"argv": list(argv), "env": env, "cwd": str(cwd),
                              "hold": hold}).encode()
        socket.send_fds(sock, [request], theirs)
    finally:
        for fd in theirs:
            os.close(fd)
    sock.setblocking(False)
    control, writer = await asyncio.open_unix_connection(sock=sock)
    pid = int(await control.readline())
    streams: dict[str, Any] = {"stdin": None, "stdout": None, "stderr": None}
    for name, fd in ours:
        if name == "stdin":
            transport, protocol = await loop.connect_write_pipe(
                asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", 0))
            streams[name] = asyncio.StreamWriter(transport, protocol, None, loop)
        else:
            reader = asyncio.StreamReader(limit=2 ** 20)
            await loop.connect_read_pipe(lambda r=reader: asyncio.StreamReaderProtocol(r),
                                         os.fdopen(fd, "rb", 0))
            streams[name] = reader
    return Forked(pid, control, writer, **streams)


if __name__ == "__main__":
    serve(sys.argv[1])
