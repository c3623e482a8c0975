"""Logging: one setup function for loguru, and redaction of every secret on the way out.

Redaction happens twice. A core patcher masks the message and the `extra` values
of every record, whatever sink it goes to (tests' sinks included), and folds an
attached exception into the message as redacted traceback text, so no sink ever
formats an exception's own words. The stream sinks that `setup_logging` adds also
mask the final text. Tracebacks never show variable values (`diagnose=False`):
those hold the key, the query and the signature.

Libraries that log with the standard `logging` module (aiohttp's server logs a bad
request with the start of its URL) are routed into loguru by an `InterceptHandler`
on the root logger, so their records get the same redaction and the same sinks; the
log file is created mode 600 whatever the umask.

Formats: coloured human lines on a terminal; plain text elsewhere (systemd's journal,
a pipe, a file), one event a line: no colour codes, and a message's own line breaks
(a traceback) written as `\\n`, so journald never cuts one event into several entries;
JSON lines for machines only when asked (`--log-format json`, `--log-json`). A log file
rotates and old files are removed by loguru's `rotation` and `retention` options.
"""

from __future__ import annotations

import json as _json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any
from urllib.parse import quote

from loguru import logger
from pydantic import SecretStr

MASK = "***"
MIN_SECRET_LENGTH = 6  # a shorter "secret" would mask ordinary words

HUMAN_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> {message}"
)
PLAIN_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name} {message}"
_PLAIN_LINE = "{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {name} {extra[_plain]}\n"

# (pattern, replacement): each keeps the name and masks the value
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(\bsignature=)[^&\s\"'<>]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\bX-MBX-APIKEY\b[\"']?\s*[:=,]\s*[\"']?)[^\"'\s,;}&)\]]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\blisten_?token\b[\"']?\s*[:=]\s*[\"']?)[^\"'\s,;}&)\]]+"), r"\1" + MASK),
    (re.compile(r"(?i)(\btoken=)[^&\s\"'<>]+"), r"\1" + MASK),
)


class Redactor:
    """Masks registered secret values and the secret-bearing patterns of a text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self._compiled: re.Pattern[str] | None = None

    def register(self, value: str | SecretStr | None) -> None:
        """Mask `value` (and its URL-encoded form) wherever it appears from now on."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not text or len(text) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            self._secrets.update({text, quote(text, safe="")})
            # longest first, so a secret that contains another is masked whole
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._compiled = re.compile("|".join(re.escape(s) for s in alternatives))

    def clear(self) -> None:
        """Forget every registered secret."""
        with self._lock:
            self._secrets.clear()
            self._compiled = None

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def redact(self, text: str) -> str:
        """The text with every secret value and secret-bearing parameter masked."""
        compiled = self._compiled
        if compiled is not None:
            text = compiled.sub(MASK, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """Strings redacted, containers walked, anything else left as it is."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_value(v) for v in value]
        if type(value) is tuple:
            return tuple(self.redact_value(v) for v in value)
        return value

    def patch(self, record: Any) -> None:
        """A loguru patcher: masks the message and extra values; folds in the exception, masked."""
        message = record["message"]
        exc = record["exception"]
        if exc is not None and exc.type is not None:
            lines = traceback.format_exception(exc.type, exc.value, exc.traceback)
            message = f"{message}\n{''.join(lines).rstrip()}"
            record["exception"] = None
        record["message"] = self.redact(message)
        if record["extra"]:
            record["extra"].update(self.redact_value(dict(record["extra"])))


REDACTOR = Redactor()

# the stream the console sink of the last setup writes to, and its level (see `say_error`)
_console: tuple[IO[str], int] | None = None


def register_secret(value: str | SecretStr | None) -> None:
    """Mask this value in every log line from now on (call at start-up with the key and secret)."""
    REDACTOR.register(value)


def redact(text: str) -> str:
    """The text as it may be logged."""
    return REDACTOR.redact(text)


class RedactingStream:
    """A loguru stream sink that masks the final text before writing it."""

    def __init__(self, stream: IO[str], redactor: Redactor, *, close: bool = False) -> None:
        self._stream = stream
        self._redactor = redactor
        self._close = close

    def write(self, message: str) -> None:
        """Write the redacted text."""
        self._stream.write(self._redactor.redact(str(message)))

    def flush(self) -> None:
        """Flush the stream."""
        self._stream.flush()

    @property
    def stream(self) -> IO[str]:
        """The stream written to."""
        return self._stream

    def isatty(self) -> bool:
        """Whether the stream is a terminal."""
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def stop(self) -> None:
        """Close the stream when this sink opened it (loguru calls this on remove)."""
        if self._close:
            self._stream.close()


@dataclass(slots=True)
class LoggingSetup:
    """What `setup_logging` did: its handler ids and the redactor in use."""

    handler_ids: list[int] = field(default_factory=list)
    redactor: Redactor = REDACTOR
    json: bool = False
    file: Path | None = None

    def remove(self) -> None:
        """Remove the handlers this setup added (and the routing of the standard loggers)."""
        for handler_id in self.handler_ids:
            logger.remove(handler_id)
        self.handler_ids.clear()
        unroute_stdlib()
        global _console
        _console = None


class InterceptHandler(logging.Handler):
    """A `logging` handler that hands each record to loguru (so to its redaction and sinks)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Log the record with loguru at its level, attributed to the caller of `logging`."""
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


# aiohttp's records (a bad request, an access line) follow the chosen level; the other
# libraries' only from this one on (aiosqlite's DEBUG would log every query)
OTHER_LIBRARIES_FROM = logging.WARNING


def route_stdlib(level: str) -> None:
    """Send every standard-library logger's records through loguru (once, idempotent)."""
    unroute_stdlib()
    root = logging.getLogger()
    root.addHandler(InterceptHandler())
    chosen = logging.getLevelName(level.upper())
    chosen = chosen if isinstance(chosen, int) else logging.DEBUG  # TRACE, SUCCESS: loguru's own
    root.setLevel(max(chosen, OTHER_LIBRARIES_FROM))
    logging.getLogger("aiohttp").setLevel(chosen)


def unroute_stdlib() -> None:
    """Remove the InterceptHandler from the root logger."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, InterceptHandler)]:
        root.removeHandler(handler)


def _private(path: str, flags: int) -> int:
    """`open`'s opener for log files: mode 600 (the log holds order numbers and chat text)."""
    return os.open(path, flags, 0o600)


DEFAULT_ROTATION = "50 MB"  # a log file is rotated at this size ...
DEFAULT_RETENTION = 10  # ... and this many rotated files are kept
FORMATS = ("auto", "human", "json")


def wants_json(fmt: str = "auto", json: bool = False, stream: IO[str] | None = None) -> bool:
    """Whether to write JSON lines: only when asked (`json`, `--log-json`). `auto` writes
    coloured lines on a terminal and plain one-line text elsewhere (the journal reads text)."""
    return json or fmt == "json"


def under_journal(stream: IO[str] | None = None) -> bool:
    """Whether `stream` (stderr) is systemd's journal: JOURNAL_STREAM names its device and
    inode (a child of the service inherits the variable with another stderr: not the journal)."""
    said = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = said.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    out = stream if stream is not None else sys.stderr
    try:
        st = os.fstat(out.fileno())
    except (AttributeError, OSError, ValueError):  # a StringIO, a closed stream
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def plain_line(record: Any) -> str:
    """loguru format function: a plain text line, one event a line (a message's own line
    breaks, a traceback's, written as `\\n`)."""
    message = str(record["message"]).replace("\r\n", "\n").replace("\r", "\n")
    record["extra"]["_plain"] = message.replace("\n", "\\n")
    return _PLAIN_LINE


def setup_logging(
    level: str = "INFO",
    json: bool = False,
    file: str | Path | None = None,
    *,
    stream: IO[str] | None = None,
    secrets: Iterable[str | SecretStr | None] = (),
    redactor: Redactor = REDACTOR,
    rotation: str | int | None = DEFAULT_ROTATION,
    retention: str | int | None = DEFAULT_RETENTION,
) -> LoggingSetup:
    """Replace loguru's handlers: human lines (coloured on a TTY) or JSON lines, to stderr and `file`."""
    for secret in secrets:
        redactor.register(secret)
    logger.remove()
    logger.configure(patcher=redactor.patch)
    out = stream if stream is not None else sys.stderr
    setup = LoggingSetup(redactor=redactor, json=json, file=Path(file) if file else None)
    setup.handler_ids.append(_add(RedactingStream(out, redactor), level, json))
    global _console
    _console = (out, logger.level(level.upper()).no)
    if file is not None:
        path = Path(file)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        setup.handler_ids.append(logger.add(
            str(path), level=level.upper(), format=json_line if json else plain_line,
            colorize=False,
            rotation=rotation, retention=retention, encoding="utf-8", opener=_private,
            backtrace=False, diagnose=False, enqueue=False,
        ))
    route_stdlib(level)
    return setup


def say_error(message: str, prefix: str) -> None:
    """An error that ends a command: logged (every sink, the log file too), and on stderr once.

    The console sink already writes it to stderr, as a human line on a terminal and as a
    JSON line elsewhere; printing it as well would show it twice. It is printed, as
    `prefix: message`, only when no console sink at ERROR level writes to stderr.
    """
    logger.error("{}", message)
    shown = _console is not None and _console[0] is sys.stderr and _console[1] <= logger.level("ERROR").no
    if not shown:
        print(f"{prefix}: {redact(message)}", file=sys.stderr)


def setup_from_args(
    args: Any, level: str | None = None, secrets: Iterable[str | SecretStr | None] = ()
) -> LoggingSetup:
    """`setup_logging` with the global command-line options (`--log-level`, `--log-file`, ...)."""
    return setup_logging(
        level or getattr(args, "log_level", None) or "INFO", bool(getattr(args, "log_json", False)),
        getattr(args, "log_file", None), secrets=secrets,
        rotation=getattr(args, "log_rotation", None) or DEFAULT_ROTATION,
        retention=retention_value(getattr(args, "log_retention", None)) or DEFAULT_RETENTION,
    )


def retention_value(text: str | None) -> str | int | None:
    """A `--log-retention` value as loguru takes it: a count of files, or a duration."""
    if text is None:
        return None
    return int(text) if text.strip().isdigit() else text


def json_line(record: Any) -> str:
    """loguru format function: one compact JSON object a line (time, level, where, message, extra)."""
    doc = {
        "time": record["time"].isoformat(), "level": record["level"].name,
        "logger": record["name"], "function": record["function"], "line": record["line"],
        "message": record["message"],
    }
    extra = {k: v for k, v in record["extra"].items() if not k.startswith("_")}
    if extra:
        doc["extra"] = extra
    record["extra"]["_json"] = _json.dumps(doc, default=str, ensure_ascii=False)
    return "{extra[_json]}\n"


def _add(sink: RedactingStream, level: str, json: bool) -> int:
    tty = sink.isatty() and not under_journal(sink.stream)
    return logger.add(
        sink,
        level=level.upper(),
        format=json_line if json else (HUMAN_FORMAT if tty else plain_line),
        colorize=tty and not json,
        backtrace=False,
        diagnose=False,  # variable values in tracebacks would show keys and signatures
        enqueue=False,
    )
