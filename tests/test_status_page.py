"""The status page in a real browser: headless Chromium renders it against a bot on the simulator.

Chromium is needed: CI's `.ci/run` installs Debian's package; elsewhere the test is
skipped (`apt-get install chromium` to run it).
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest

from simulator.app import Simulator
from simulator.scenario import generate_credential
from tests.support import CHROMIUM, bot_on_sim, decided, render_dom, write_config

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed: `apt-get install chromium` runs the status page test "
           "(CI's .ci/run installs it)")

TOKEN = "page-token-" + generate_credential()[:16]



class Dom(HTMLParser):
    """Collects the text under each element that has a data-endpoint or data-ad attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: dict[str, dict[str, str]] = {}
        self.ads: dict[str, list[str]] = {}
        self._stack: list[tuple[str, str | None, str]] = []  # (tag, key, class)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        key = None
        if "data-endpoint" in a:
            key = f"endpoint:{a['data-endpoint']}"
            self.endpoints[a["data-endpoint"] or ""] = {"state": a.get("data-state") or "",
                                                        "cells": ""}
        elif "data-ad" in a:
            key = f"ad:{a['data-ad']}"
            self.ads[a["data-ad"] or ""] = []
        self._stack.append((tag, key, a.get("class") or ""))

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        keys = [k for _, k, _ in self._stack if k]
        classes = " ".join(c for _, _, c in self._stack)
        for key in keys:
            kind, name = key.split(":", 1)
            if kind == "endpoint":
                self.endpoints[name]["cells"] += data + "|"
            elif "price" in classes.split():
                self.ads[name].append(data.strip())




@pytest.mark.slow
async def test_the_page_shows_the_matrix_and_the_ads_in_a_browser(fast_sim: Simulator,
                                                                   tmp_path: Path) -> None:
    config = write_config(tmp_path / "bot.toml", market_interval=5)
    async with bot_on_sim(fast_sim, config, tmp_path / "bot.db", token=TOKEN) as r:
        prices: set[Decimal] = set()
        r.bot.engine.observers.append(
            lambda ad, row: prices.update(p for p in (row.price_before, row.target) if p))
        await asyncio.wait_for(decided(r.bot).wait(), 10)
        fast_sim.set_registration("categories", "unregistered")
        assert str(await r.bot.registry.probe("categories")) == "unregistered"
        assert r.web is not None
        # the token in the fragment: the browser keeps it, the server never sees it in a URL
        html = await render_dom(f"{r.web.url}/#token={TOKEN}", tmp_path / "chromium")
        asked = await render_dom(f"{r.web.url}/", tmp_path / "chromium-2")
        own = r.bot.ads[0].own
        assert own is not None
        prices.add(own.price)

    # without a token the page asks for it (and shows no data)
    assert re.search(r'<form id="login"(?![^>]*hidden)', asked), "no token: the form is shown"
    assert "needs its web token" in asked and 'data-endpoint="' not in asked
    assert re.search(r'<form id="login"[^>]*hidden', html), "with the token the form stays hidden"
    dom = Dom()
    dom.feed(html)
    assert re.search(r'<p id="error"[^>]*hidden', html), "the page says it cannot read the status"
    categories = dom.endpoints["categories"]
    assert categories["state"] == "unregistered"
    assert "unregistered" in categories["cells"] and "-2008" in categories["cells"]
    assert dom.endpoints["search"]["state"] == "available"
    shown = [t for t in dom.ads["sell-usdt"] if re.fullmatch(r"\d+\.\d+", t)]
    assert shown and Decimal(shown[0]) in prices, (shown, prices)
    assert re.search(r'data-field="budget">\d+ of \d+ left in the window', html)  # issue 10 #8
    assert re.search(r"<svg[^>]*class=\"chart\"", html)  # the price chart was drawn
    assert re.search(r"<svg[^>]*class=\"timeline\"", html)
