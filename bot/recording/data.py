"""The portable recording: one JSON object per line, gzip-compressed.

Line 1 is the header: {"format": "p2pbot-recording", "version": 1, "from", "to",
"pseudonymised", "columns", "moving"}. Then one line per recorded row in the order written
({"at", "kind", ...body}), and a last line {"kind": "end", "lines": N} so a truncated
file is told from a complete one. A search row of a market line holds only what moves
between snapshots (the `moving` columns: ad, price, max, available); the rest of an ad
(advertiser, minimum, pay methods...) is an "ad" line written before the first market line
that shows it, and again when it changes: a day of two markets is a few MB. User ids, nicknames and ad numbers are replaced by a
keyed hash (a random salt per export, never stored): the same rival keeps the same
pseudonym within a file, and nothing in the file leads back to a person or an account.
No keys, no order numbers, no counterparties are exported.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.recording.recorder import MOVING, ROW_FIELDS, STILL

FORMAT = "p2pbot-recording"
VERSION = 1
HEADER_KEYS = frozenset({"format", "version", "from", "to", "pseudonymised", "columns",
                         "exported_at", "rows", "moving"})
AD_KEYS = frozenset(["ref", "adv_no", *(ROW_FIELDS[i] for i in STILL)])
BODY_KEYS: dict[str, frozenset[str]] = {
    "ad": AD_KEYS,
    "market": frozenset({"asset", "fiat", "side", "rows"}),
    "decision": frozenset({"ad", "adv_no", "side", "asset", "fiat", "own", "online", "open",
                           "reference", "caps", "result", "target", "reason", "guards", "rank",
                           "standing"}),
    "order": frozenset({"adv_no", "side", "asset", "fiat", "amount", "total", "price", "status"}),
    "reference": frozenset({"asset", "fiat", "side", "price", "stale"}),
    "own": frozenset({"ads"}),
}
OWN_KEYS = frozenset({"adv_no", "price", "price_type", "ratio", "status", "trade_type", "asset",
                      "fiat", "available", "min", "max", "scale", "pay"})


class DataError(Exception):
    """A recording that cannot be read: names the file, the line and what is wrong."""


@dataclass
class Recording:
    """A recording in memory: the rows in the order written."""

    header: dict[str, Any]
    entries: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    lines: int = 0  # data lines read (ad lines included)

    def span(self) -> tuple[float, float] | None:
        """The first and last time recorded."""
        if not self.entries:
            return None
        return self.entries[0][0], self.entries[-1][0]


class Pseudonyms:
    """Stable keyed hashes of ids within one export; `raw` keeps them as they are."""

    def __init__(self, raw: bool = False, salt: bytes | None = None) -> None:
        self.raw = raw
        self._salt = salt if salt is not None else os.urandom(32)
        self.nicknames: dict[str, str] = {}

    def of(self, kind: str, value: str | None) -> str | None:
        """The pseudonym of `value` ("u-…" user, "n-…" nickname, "a-…" ad)."""
        if self.raw or not value:
            return value
        digest = hmac.new(self._salt, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        out = f"{kind[0]}-{digest[:12]}"
        if kind == "nick":
            self.nicknames[value] = out
        return out

    def scrub(self, text: str) -> str:
        """`text` with every nickname seen so far replaced by its pseudonym."""
        if self.raw:
            return text
        for nick in sorted(self.nicknames, key=len, reverse=True):
            text = text.replace(nick, self.nicknames[nick])
        return text


def exported(kind: str, body: dict[str, Any], names: Pseudonyms) -> dict[str, Any]:
    """A stored body as exported: ids pseudonymised, nothing beyond the known fields."""
    out = {k: v for k, v in body.items() if k in BODY_KEYS[kind]}
    if kind == "market":
        rows = []
        for r in body["rows"]:
            r = list(r)
            r[0], r[1], r[2] = names.of("ad", r[0]), names.of("user", r[1]), names.of("nick", r[2])
            rows.append(r)
        out["rows"] = rows
    elif kind in ("decision", "order"):
        out["adv_no"] = names.of("ad", body.get("adv_no"))
        if kind == "decision":
            out["reason"] = names.scrub(str(body.get("reason", "")))
    elif kind == "own":
        out["ads"] = [{**{k: v for k, v in a.items() if k in OWN_KEYS},
                       "adv_no": names.of("ad", a.get("adv_no"))} for a in body["ads"]]
    return out


class Encoder:
    """Stored rows as export lines: ids pseudonymised, each ad's still part written once."""

    def __init__(self, names: Pseudonyms) -> None:
        self.names = names
        self._ads: dict[str, list[Any]] = {}
        self._refs: dict[str, int] = {}  # adv_no -> its number in this file

    def lines(self, at: float, kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The export lines of one stored row (ad lines first where a market row needs them)."""
        out = exported(kind, body, self.names)
        if kind != "market":
            return [{"at": at, "kind": kind, **out}]
        lines, rows = [], []
        for row in out["rows"]:
            still = [row[i] for i in STILL]
            ref = self._refs.setdefault(row[0], len(self._refs))
            if self._ads.get(row[0]) != still:
                self._ads[row[0]] = still
                lines.append({"at": at, "kind": "ad", "ref": ref, "adv_no": row[0],
                              **{ROW_FIELDS[i]: row[i] for i in STILL}})
            rows.append([ref, *(row[i] for i in MOVING[1:])])
        lines.append({"at": at, "kind": kind, **out, "rows": rows})
        return lines


def export_lines(entries: Iterable[tuple[float, str, dict[str, Any]]],
                 names: Pseudonyms) -> Iterator[dict[str, Any]]:
    """Every line of an export of `entries` (at, kind, stored body)."""
    enc = Encoder(names)
    for at, kind, body in entries:
        yield from enc.lines(at, kind, body)


def write(path: Path, header: dict[str, Any], lines: Iterable[dict[str, Any]]) -> int:
    """Write the export to `path` atomically (a temporary file renamed at the end)."""
    tmp = path.with_name(f".{path.name}.part")
    count = 0
    try:
        with gzip.open(tmp, "wt", encoding="utf-8") as out:
            out.write(json.dumps({"format": FORMAT, "version": VERSION, "columns": ROW_FIELDS,
                                  "moving": [ROW_FIELDS[i] for i in MOVING], **header},
                                 separators=(",", ":")) + "\n")
            for line in lines:
                out.write(json.dumps(line, separators=(",", ":")) + "\n")
                count += 1
            out.write(json.dumps({"kind": "end", "lines": count}) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return count


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            yield from enumerate(f, 1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        what = "truncated" if isinstance(exc, EOFError) else f"not a gzip file ({exc})"
        raise DataError(f"{path}: {what}: not a p2pbot recording (write one with "
                        "`p2pbot export`)") from None


def _header(path: Path, text: str) -> dict[str, Any]:
    try:
        head = json.loads(text)
    except json.JSONDecodeError:
        head = None
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise DataError(f"{path}: line 1: not a p2pbot recording (the header must name the "
                        f"format {FORMAT!r})")
    if head.get("version") != VERSION:
        raise DataError(f"{path}: line 1: version {head.get('version')!r} of {FORMAT}; this "
                        f"bot reads version {VERSION}")
    unknown = sorted(set(head) - HEADER_KEYS)
    if unknown:
        raise DataError(f"{path}: line 1: unknown field(s) {', '.join(unknown)}")
    if list(head.get("moving") or ()) != [ROW_FIELDS[i] for i in MOVING]:
        raise DataError(f"{path}: line 1: moving columns {head.get('moving')} are not "
                        f"{[ROW_FIELDS[i] for i in MOVING]}")
    if list(head.get("columns") or ()) != list(ROW_FIELDS):
        raise DataError(f"{path}: line 1: columns {head.get('columns')} are not {list(ROW_FIELDS)}")
    return head


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _entry(path: Path, n: int, text: str, ads: dict[Any, list[Any]]
           ) -> tuple[float, str, dict[str, Any]] | None:
    where = f"{path}: line {n}"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: not a JSON object")
    kind, at = obj.pop("kind", None), obj.pop("at", None)
    if kind not in BODY_KEYS:
        raise DataError(f"{where}: unknown kind {kind!r} (known: {', '.join(BODY_KEYS)}, end)")
    if not isinstance(at, (int, float)):
        raise DataError(f"{where}: 'at' must be a number of seconds, got {at!r}")
    unknown = sorted(set(obj) - BODY_KEYS[kind])
    if unknown:
        raise DataError(f"{where}: unknown field(s) of a {kind} line: {', '.join(unknown)}")
    missing = sorted(BODY_KEYS[kind] - set(obj) - {"open", "caps", "rank", "standing"})
    if missing:
        raise DataError(f"{where}: a {kind} line lacks {', '.join(missing)}")
    if kind == "ad":
        ads[obj["ref"]] = [obj["adv_no"], *(obj[ROW_FIELDS[i]] for i in STILL)]
        return None
    if kind == "market":
        obj["rows"] = [_row(where, row, ads) for row in obj["rows"]]
    if kind == "own":
        for ad in obj["ads"]:
            unknown = sorted(set(ad) - OWN_KEYS) if isinstance(ad, dict) else ["(not an object)"]
            if unknown:
                raise DataError(f"{where}: unknown field(s) of an own ad: {', '.join(unknown)}")
    return float(at), kind, obj


def _row(where: str, row: Any, ads: dict[Any, list[Any]]) -> list[Any]:
    """A market line's row (the ad's ref and the moving columns) as a full row."""
    if not isinstance(row, list) or len(row) != len(MOVING) or not _NUMBER.match(str(row[1])):
        raise DataError(f"{where}: a search row must be the ad's ref and the moving columns "
                        f"({', '.join(ROW_FIELDS[i] for i in MOVING[1:])}) with a decimal "
                        f"price, got {row!r}")
    still = ads.get(row[0])
    if still is None:
        raise DataError(f"{where}: ad ref {row[0]!r} is shown before its ad line")
    adv_no, user, nick, low, pay, merchant, month, rate, ratio = still
    _, price, high, available = row
    return [adv_no, user, nick, price, low, high, available, pay, merchant, month, rate, ratio]


def read(path: Path) -> Recording:
    """Read and check a whole export; DataError on anything truncated, foreign or unknown."""
    rec: Recording | None = None
    ended = False
    ads: dict[Any, list[Any]] = {}
    for n, text in _lines(path):
        if rec is None:
            rec = Recording(_header(path, text))
            continue
        if ended:
            raise DataError(f"{path}: line {n}: data after the end line")
        if text.startswith('{"kind":"end"') or text.startswith('{"kind": "end"'):
            end = json.loads(text)
            if end.get("lines") != rec.lines:
                raise DataError(f"{path}: the end line counts {end.get('lines')} lines, the file "
                                f"has {rec.lines}")
            ended = True
            continue
        entry = _entry(path, n, text, ads)
        rec.lines += 1
        if entry is not None:
            rec.entries.append(entry)
    if rec is None:
        raise DataError(f"{path}: empty: not a p2pbot recording")
    if not ended:
        raise DataError(f"{path}: truncated: the end line is missing after {rec.lines} "
                        "lines (copy the whole file, or export again)")
    return rec
