"""Logging: setup, JSON lines, and no key, secret, signature or token in any log line."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from pydantic import SecretStr

from bot.binance.errors import BinanceError
from bot.binance.p2p import P2PApi
from bot.logs import (
    MASK,
    REDACTOR,
    InterceptHandler,
    Redactor,
    redact,
    register_secret,
    setup_logging,
)
from config.settings import Settings
from tests.support import (
    KEY,
    NOW_MS,
    SECRET,
    FakeClock,
    envelope,
    make_client,
    mocked,
    path_re,
    sent_requests,
)

TOKEN = "TOKEN0f1e2d3c4b5a69788796a5b4c3d2e1f0"
C2C = "/sapi/v1/c2c"


def _no_patch(record: Any) -> None:
    return None


@pytest.fixture(autouse=True)
def fresh_logger() -> Iterator[None]:
    """Each test starts with no handler and no redaction, and leaves loguru as it found it."""
    logger.remove()
    logger.configure(patcher=_no_patch)
    REDACTOR.clear()
    yield
    logger.remove()
    logger.configure(patcher=_no_patch)
    REDACTOR.clear()
    logger.add(sys.stderr)


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- the redactor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /x?a=1&recvWindow=5000&timestamp=1&signature=c8db56825ae7",
         f"GET /x?a=1&recvWindow=5000&timestamp=1&signature={MASK}"),
        ("sig: https://h/p?timestamp=1&signature=abc%2Bdef%3D done",
         f"sig: https://h/p?timestamp=1&signature={MASK} done"),
        ("headers {'clientType': 'web', 'X-MBX-APIKEY': 'abcdef123'}",
         f"headers {{'clientType': 'web', 'X-MBX-APIKEY': '{MASK}'}}"),
        ("X-MBX-APIKEY: abcdef123", f"X-MBX-APIKEY: {MASK}"),
        ('{"listenToken":"TOKENabc","listenKey":"k"}', f'{{"listenToken":"{MASK}","listenKey":"k"}}'),
        ("listen_token=TOKENabc", f"listen_token={MASK}"),
        ("wss://im/chat/c2c_x_v2?token=TOKENabc&clientType=web",
         f"wss://im/chat/c2c_x_v2?token={MASK}&clientType=web"),
        ("tokens=5 and page=1&rows=20", "tokens=5 and page=1&rows=20"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_registered_secrets_are_masked_raw_and_url_encoded() -> None:
    r = Redactor()
    r.register(SecretStr(SECRET))
    r.register("p@ss word+1")
    r.register("abc")  # too short to be masked safely: ignored
    r.register(None)
    assert r.redact(f"secret={SECRET}!") == f"secret={MASK}!"
    assert r.redact("a p%40ss%20word%2B1 b p@ss word+1") == f"a {MASK} b {MASK}"
    assert r.redact("abc") == "abc"
    assert "secrets" in repr(r) and SECRET not in repr(r)
    r.clear()
    assert r.redact(SECRET) == SECRET


def test_a_longer_secret_is_masked_whole() -> None:
    r = Redactor()
    r.register("abcdef")
    r.register("abcdefghij")
    assert r.redact("xabcdefghijx") == f"x{MASK}x"


def test_module_level_register_and_redact() -> None:
    register_secret(KEY)
    assert redact(f"key {KEY}") == f"key {MASK}"


# --- setup_logging ------------------------------------------------------------------------------


def test_human_lines_without_colour_off_a_tty() -> None:
    out = io.StringIO()
    setup_logging("INFO", stream=out, secrets=[SecretStr(SECRET)])
    logger.debug("hidden")
    logger.info("secret is {}", SECRET)
    text = out.getvalue()
    assert "hidden" not in text
    assert f"INFO    tests.test_logging secret is {MASK}" in text
    assert "\x1b[" not in text


def test_colour_on_a_tty() -> None:
    out = TtyStream()
    setup_logging("DEBUG", stream=out)
    logger.info("hello")
    assert "\x1b[" in out.getvalue() and "hello" in out.getvalue()


def test_json_lines_to_a_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "bot.jsonl"
    setup = setup_logging("DEBUG", json=True, file=path, stream=io.StringIO(), secrets=[KEY])
    logger.bind(headers={"X-MBX-APIKEY": KEY}).debug("sent with key {}", KEY)
    setup.remove()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 1
    record = lines[0]
    assert record["message"] == f"sent with key {MASK}"
    assert record["level"] == "DEBUG"
    assert record["extra"]["headers"] == {"X-MBX-APIKEY": MASK}
    assert KEY not in path.read_text()


def test_tracebacks_show_no_variable_values_and_no_secret() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", stream=out, secrets=[SECRET])
    query = "timestamp=1&unregistered=LOCALVALUE42"  # diagnose=True would print this local

    try:
        raise RuntimeError(f"failed with {SECRET}" + query[:0])
    except RuntimeError:
        logger.exception("boom")
    text = out.getvalue()
    assert "boom" in text and "RuntimeError" in text
    assert SECRET not in text and "LOCALVALUE42" not in text


def test_redaction_applies_to_sinks_added_later() -> None:
    setup_logging("INFO", stream=io.StringIO(), secrets=[SECRET])
    seen: list[str] = []
    logger.add(lambda m: seen.append(str(m)), format="{message} {extra}")
    logger.bind(s=SECRET).info("token=abcdefgh signature=1234 {}", SECRET)
    assert seen and SECRET not in seen[0] and "abcdefgh" not in seen[0] and "1234" not in seen[0]


def test_setup_replaces_handlers_and_returns_what_it_did() -> None:
    out1, out2 = io.StringIO(), io.StringIO()
    setup_logging("INFO", stream=out1)
    setup = setup_logging("WARNING", stream=out2)
    logger.info("info")
    logger.warning("warn")
    assert out1.getvalue() == ""
    assert "warn" in out2.getvalue() and "info" not in out2.getvalue()
    assert len(setup.handler_ids) == 1 and setup.redactor is REDACTOR and setup.json is False


def test_stdlib_loggers_go_through_loguru_and_the_redaction(capfd: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    setup = setup_logging("INFO", stream=out, secrets=[TOKEN])
    url = f"/?token={TOKEN[:20]}&x=1"  # cut short: the token= pattern still masks it
    for name in ("aiohttp.server", "aiohttp.access", "aiohttp.web", "asyncio"):
        try:
            raise ValueError(f"bad request line {url} with {TOKEN}")
        except ValueError:
            logging.getLogger(name).exception("Error handling request from %s", "127.0.0.1")
    logging.getLogger("aiohttp.access").info("GET %s 200", url)
    logging.getLogger("aiohttp.access").debug("below the level")
    text = out.getvalue()
    assert text.count("Error handling request from 127.0.0.1") == 4
    assert "ValueError: bad request line /?token=***&x=1 with ***" in text
    assert "GET /?token=***&x=1 200" in text
    assert "below the level" not in text
    assert TOKEN[:20] not in text and TOKEN[:20] not in "".join(capfd.readouterr())
    setup.remove()
    assert not [h for h in logging.getLogger().handlers if isinstance(h, InterceptHandler)]


def test_the_log_file_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        setup = setup_logging("INFO", file=tmp_path / "logs" / "bot.log", stream=io.StringIO(),
                              rotation=1)
        logger.info("one")
        logger.info("two: rotated")  # the next file is opened the same way
    finally:
        os.umask(old)
    setup.remove()
    files = list((tmp_path / "logs").iterdir())
    assert len(files) >= 2
    for path in files:
        assert oct(path.stat().st_mode & 0o777) == "0o600", path


# --- a full request/response cycle ------------------------------------------------------------------


async def _full_cycle(errors: list[BinanceError]) -> list[str]:
    """Sync, success, 429 then success, -1021 resync, transport error, 418, blocked call."""
    clock = FakeClock(NOW_MS / 1000)
    async with make_client(clock) as client:
        client.time_synced = False
        api = P2PApi(client)
        with mocked() as m:
            m.get(path_re("/api/v3/time"), payload={"serverTime": NOW_MS}, repeat=True)
            m.get(path_re(f"{C2C}/orderMatch/getUserOrderSummary"), payload=envelope({}))
            m.post(path_re(f"{C2C}/ads/search"), status=429, headers={"Retry-After": "2"})
            m.post(path_re(f"{C2C}/ads/search"), payload=envelope([], 0))
            m.get(path_re(f"{C2C}/chat/retrieveChatCredential"), status=400,
                  payload={"code": -1021, "msg": "Timestamp outside of the recvWindow."})
            m.get(path_re(f"{C2C}/chat/retrieveChatCredential"), payload=envelope(
                {"chatWssUrl": "wss://im", "listenKey": "c2c_k", "listenToken": TOKEN}))
            m.get(path_re(f"{C2C}/ads/getAvailableAdsCategory"), exception=TimeoutError())
            m.post(path_re(f"{C2C}/ads/update"), status=418, headers={"Retry-After": "60"})
            await api.order_summary()
            await api.search_ads("USDT", "RUB", "BUY")
            cred = await api.chat_credential()
            logger.debug("chat credential {}", cred)
            for call in (api.categories(), api.update_ad_price("1", price="92.51"), api.my_ads()):
                try:
                    await call
                except BinanceError as exc:
                    errors.append(exc)
            signatures = [s.param("signature") for s in sent_requests() if "signature" in s.keys]
    assert [type(e).__name__ for e in errors] == ["ExchangeUnavailable", "IpBanned", "IpBanned"]
    assert len(signatures) == 7
    return signatures


async def test_a_full_cycle_logs_no_key_secret_signature_or_token_even_unredacted() -> None:
    raw: list[str] = []
    logger.add(lambda m: raw.append(str(m)), level="DEBUG", serialize=True)
    errors: list[BinanceError] = []
    signatures = await _full_cycle(errors)
    text = "\n".join(raw)
    assert "GET /sapi/v1/c2c/orderMatch/getUserOrderSummary -> 200" in text  # the cycle was logged
    forbidden = [KEY, SECRET, TOKEN, *signatures]
    for value in forbidden:
        assert value not in text
        for exc in errors:
            assert value not in str(exc) and value not in repr(exc)


async def test_a_full_cycle_through_setup_logging(tmp_path: Path) -> None:
    path = tmp_path / "bot.log"
    setup_logging("DEBUG", file=path, stream=io.StringIO(), secrets=[KEY, SECRET])
    logger.debug("the client would never say {} or X-MBX-APIKEY: {}", SECRET, KEY)
    signatures = await _full_cycle([])
    text = path.read_text()
    assert "-> 429" in text and "IP banned" in text
    for value in (KEY, SECRET, TOKEN, *signatures):
        assert value not in text


def test_reprs_hold_no_secret() -> None:
    settings = Settings(_env_file=None, api_key=SecretStr(KEY), api_secret=SecretStr(SECRET))  # type: ignore[call-arg]
    client = make_client()
    objects = [settings, settings.signer(), client, P2PApi(client), settings.api_key]
    for obj in objects:
        for text in (repr(obj), str(obj)):
            assert KEY not in text and SECRET not in text


# --- under systemd: plain text, one event a line ------------------------------------------------


class FileTty(io.TextIOWrapper):
    """A real file (it has a device and an inode) that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


def _multi_line_event() -> None:
    try:
        raise RuntimeError("first\nsecond")
    except RuntimeError:
        logger.exception("two\nlines")


def test_off_a_terminal_auto_is_plain_text_one_event_a_line() -> None:
    from bot.logs import wants_json

    out = io.StringIO()
    assert not wants_json("auto", False, out)  # off a terminal: text, not JSON
    setup_logging("INFO", json=wants_json("auto", False, out), stream=out)
    logger.info("hello")
    _multi_line_event()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("INFO    tests.test_logging hello")
    assert "two\\nlines" in lines[1] and "RuntimeError: first\\nsecond" in lines[1]
    assert "\x1b[" not in out.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


def test_under_journal_stream_no_colour_even_if_it_looks_like_a_terminal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal"
    with FileTty(open(path, "wb+"), encoding="utf-8") as out:
        st = os.fstat(out.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        setup_logging("INFO", stream=out)
        logger.info("hello")
        _multi_line_event()
        out.flush()
    text = path.read_text()
    assert "\x1b[" not in text and len(text.splitlines()) == 2


def test_a_journal_stream_of_another_file_is_not_the_journal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.logs import under_journal

    other = os.stat(tmp_path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{other.st_dev}:{other.st_ino}")
    with FileTty(open(tmp_path / "tty", "wb+"), encoding="utf-8") as out:
        assert not under_journal(out)
        setup_logging("INFO", stream=out)
        logger.info("hello")
        out.flush()
    assert "\x1b[" in (tmp_path / "tty").read_text()  # a terminal keeps its colours
    monkeypatch.setenv("JOURNAL_STREAM", "garbage")
    assert not under_journal(io.StringIO())


def test_the_log_file_is_one_event_a_line_too(tmp_path: Path) -> None:
    path = tmp_path / "bot.log"
    setup = setup_logging("INFO", file=path, stream=io.StringIO())
    _multi_line_event()
    setup.remove()
    assert len(path.read_text().splitlines()) == 1
