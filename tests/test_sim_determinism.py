"""The simulator's behaviour, pinned: a digest of everything a client can observe.

Each case builds a world from a scenario on a stepped clock, moves it one simulated second
at a time for some minutes and, at fixed simulated times, asks it what a bot asks (search
on every page and filter, own ads, orders, order details, chat history), updates an own ad,
sends chat texts and records every chat frame the world pushes. The digest covers the exact
JSON bytes of every answer (`simulator.answers.success`, as the gateway sends them), every
frame, and the control API's full view at the end (markets, own ads with their price and
rank histories, orders with their timelines, what the merchant sent).

The expected digests were computed on the simulator before its speed-ups (the commit that
added this file): a change that only makes the simulator cheaper must leave them alone.
A change of behaviour on purpose changes them; regenerate with

    .venv/bin/python -m tests.test_sim_determinism

and paste the printed values into EXPECTED (say why in the commit message).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from simulator import answers
from simulator.chat import ChatHub
from simulator.clock import VirtualClock
from simulator.errors import SimError
from simulator.scenario import load_scenario
from simulator.world.chatlog import ChatLog
from simulator.world.config import ChatConfig
from simulator.world.core import World
from simulator.world.data import WrittenAd

START_MS = 1_751_796_000_000
MINUTES = 12

DESK_WORLD: dict[str, Any] = {
    "markets": [{"volatility": "0.001", "competitors": 6, "bots": 1, "decoys": 1,
                 "churn_per_hour": 30, "rival_bots": 1, "mirror_bots": 1}],
    "own_ads": [
        {"side": "SELL", "price": "93.00", "adv_no": "11000000000000000001", "surplus": "1000000",
         "max": "20000", "auto_reply": "Hi, pay within 15 minutes please."},
        {"side": "BUY", "price_type": "floating", "ratio": "99", "adv_no": "11000000000000000002",
         "surplus": "1000000", "max": "20000"},
        {"side": "SELL", "price": "93.20", "adv_no": "11000000000000000003", "surplus": "3000",
         "max": "20000", "pay_methods": ["SBP"]},
    ],
    "orders": {"rate_per_hour": 240, "rank_decay": "0.8", "pay_seconds": [20, 120],
               "release_seconds": [20, 120], "cancel_probability": "0.15",
               "timeout_probability": "0.1", "appeal_probability": "0.2",
               "appeal_seconds": [60, 120], "odd_status_probability": "0.2", "restock": False},
    "chat": {"noise": True, "message_probability": "0.6", "statistics_seconds": 30},
    "rules": {"hide_on_open_orders": True, "hide_below_min": True},
}


class RecordingHub(ChatHub):
    """A chat hub with a socket always open: every frame the world pushes is kept, in order."""

    frames: list[str]

    @property
    def connected(self) -> bool:
        return True

    def push(self, frame: dict[str, Any]) -> None:
        self.frames.append(json.dumps(frame, ensure_ascii=False))


def _world(name: str, seed: int, change: Callable[[dict[str, Any]], None] | None = None
           ) -> tuple[World, VirtualClock]:
    spec = load_scenario(name)
    cfg = json.loads(json.dumps(dict(spec.world), default=str))
    if change is not None:
        change(cfg)
    clock = VirtualClock(start_ms=START_MS, speed=0, stepped=True)
    world = World.from_config(cfg, seed=seed, clock=clock)
    world.use_realism(spec.realism)
    old = world.hub
    hub = RecordingHub(world.cfg.chat, world.credentials, clock, old._on_text)
    hub.frames = []
    world.hub = hub
    return world, clock


class Digest:
    """Everything observed, in order, hashed as it comes."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, label: str, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self._hash.update(label.encode() + b"\0" + data + b"\0")
        self.count += 1

    def ask(self, world: World, endpoint: str, query: dict[str, str], body: Any) -> None:
        """One request as the gateway answers it: the success envelope's bytes, or the error."""
        try:
            data, total = world.handle(endpoint, query, body)
            reply = answers.success(data, total)
        except SimError as exc:
            reply = answers.error(exc.code, exc.msg)
        self.add(endpoint, reply.body)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _searches(world: World, digest: Digest, second: int) -> None:
    filters: list[dict[str, Any]] = [{}, {"payTypes": ["SBP"]}, {"publisherType": "merchant"},
                                     {"transAmount": "5000"}, {"filterType": "tradable"}]
    extra = filters[(second // 10) % len(filters)]
    for asset, fiat in world.markets:
        for taker in ("BUY", "SELL"):
            for page in (1, 2):
                body = {"asset": asset, "fiat": fiat, "tradeType": taker, "page": page, "rows": 20}
                digest.ask(world, "search", {}, body | extra)
        digest.ask(world, "reference_price", {}, {"assets": [asset], "fiatCurrency": fiat,
                                                  "tradeType": "BUY"})


def _desk(world: World, digest: Digest, second: int) -> None:
    digest.ask(world, "my_ads", {}, {"page": 1, "rows": 20})
    digest.ask(world, "order_summary", {}, None)
    digest.ask(world, "list_orders", {}, {"page": 1, "rows": 20})
    digest.ask(world, "list_orders", {}, {"orderStatusList": [2, 3], "page": 1, "rows": 20})
    newest = world.orders.newest_first()[:3]
    for order in newest:
        digest.ask(world, "order_detail", {}, {"adOrderNo": order.order_no})
    if newest and second % 60 == 0:  # the merchant reads one chat and answers another
        order = newest[0]
        digest.ask(world, "chat_messages", {"orderNo": order.order_no, "page": "1",
                                            "rows": "20"}, None)
    if newest and second % 90 == 0:
        text = json.dumps({"type": "text", "uuid": f"u-{second}", "orderNo": newest[-1].order_no,
                           "content": f"hello at {second}", "self": True})
        digest.add("said", json.dumps(world.hub._on_text(text)))


def _update(world: World, digest: Digest, second: int) -> None:
    """Move each own ad a little (price or ratio) so ranks and orders shift."""
    for i, ad in enumerate(world.account.ads.values()):
        market = world.account.market_of(ad)
        if ad.price_type == 1:
            step = market.tick * (1 if (second // 120 + i) % 2 else -1) * 3
            body = {"advNo": ad.adv_no, "price": str(ad.price + step)}
        else:
            body = {"advNo": ad.adv_no, "priceFloatingRatio": "99.5" if second % 240 else "99.1"}
        digest.ask(world, "update_ad", {}, body)
        digest.ask(world, "ad_detail", {"adsNo": ad.adv_no}, None)


def _closing(world: World, digest: Digest) -> None:
    for market in world.markets.values():
        digest.add("market", json.dumps(market.to_control(), sort_keys=True))
    digest.add("ads", json.dumps(world.account.to_control(), sort_keys=True))
    digest.add("orders", json.dumps(world.orders.to_control(), sort_keys=True, default=str))
    digest.add("sent", json.dumps(world.chatlog.sent, sort_keys=True))
    assert isinstance(world.hub, RecordingHub)
    for frame in world.hub.frames:
        digest.add("frame", frame)


def run(name: str, seed: int, change: Callable[[dict[str, Any]], None] | None = None,
        minutes: int = MINUTES) -> tuple[str, int]:
    """The digest of `minutes` simulated minutes of a scenario, and how many items it holds."""
    world, clock = _world(name, seed, change)
    digest = Digest()
    for second in range(1, minutes * 60 + 1):
        clock.advance(1)
        world.advance()
        if second % 10 == 0:
            _searches(world, digest, second)
        if second % 15 == 0:
            _desk(world, digest, second)
        if second % 120 == 0:
            _update(world, digest, second)
    _closing(world, digest)
    return digest.hexdigest(), digest.count


def _stormy(cfg: dict[str, Any]) -> None:
    cfg["orders"] |= {"rate_per_hour": 240, "rank_decay": "1"}  # the chaos day raises them too
    cfg["chat"] = {"noise": True, "message_probability": "0.5", "statistics_seconds": 20}


def _realistic(cfg: dict[str, Any]) -> None:
    cfg["orders"] |= {"rate_per_hour": 300, "rank_decay": "1", "restock": False}


def _desk_world(cfg: dict[str, Any]) -> None:
    markets = cfg["markets"]
    cfg.clear()
    cfg.update(json.loads(json.dumps(DESK_WORLD)))
    cfg["markets"][0] |= {"asset": markets[0]["asset"], "fiat": markets[0]["fiat"],
                          "reference": markets[0]["reference"]}


CASES: dict[str, tuple[str, int, Callable[[dict[str, Any]], None] | None]] = {
    "price_war": ("price_war", 7, None),
    "stormy": ("stormy", 13, _stormy),
    "realistic": ("realistic", 7, _realistic),
    "desk": ("calm", 5, _desk_world),
}

# regenerate: .venv/bin/python -m tests.test_sim_determinism (see the module docstring)
EXPECTED: dict[str, tuple[str, int]] = {
    'desk': ('13c4682afc7e22be3071832d36dd0e9e9d1ac4b088208390471233a462731a21', 980),
    'price_war': ('a9d9a63d2232c91c598da9cea1e86d3b4ff6acafd83b064afeeb0ea906b19885', 1028),
    'realistic': ('23627436e460e10547601a8c9cc3914e5a7af8729cf08e4b9a246544fa6a32af', 809),
    'stormy': ('9400976015053a53a1e0626855967ae6615487f7c3f75460a9688d3cc01d0d7d', 1016),
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c == "price_war" else c
                                  for c in sorted(CASES)])  # price_war's 30 bots: 0.35 s
def test_the_same_seed_gives_the_same_answers_frames_and_world(case: str) -> None:
    name, seed, change = CASES[case]
    assert run(name, seed, change) == EXPECTED[case]


def test_an_ad_written_again_after_a_change_is_the_ad_written_afresh() -> None:
    """The cached Ad object (simulator.world.data.WrittenAd): after a new price, update time
    or amount, its dict and text are those of the same ad written from scratch."""
    world, _ = _world("price_war", 7)
    market = world.markets[("USDT", "RUB")]
    scales, ad = market.scales, market.books["SELL"][0]

    def afresh() -> WrittenAd:
        kept, ad._shown = ad._shown, None
        try:
            return ad.written(scales)
        finally:
            ad._shown = kept

    ad.written(scales).text()
    changes: list[Callable[[], None]] = [
        lambda: setattr(ad, "price", ad.price + market.tick),
        lambda: setattr(ad, "update_ms", ad.update_ms + 1000),
        lambda: setattr(ad, "surplus", ad.surplus / 2),
    ]
    for i, change in enumerate(changes):
        change()
        cached, fresh = ad.written(scales), afresh()
        assert cached.doc == fresh.doc
        assert cached.text() == fresh.text() == answers.dumps_text(fresh.doc)
        assert (cached._runs is not None) == (i < 2)  # a price or time: only MOVING rewritten


def test_the_unread_counts_are_those_of_the_messages() -> None:
    """The chat log counts unread messages as they come and go (simulator.world.chatlog):
    the counts equal a reading of every message, after texts, reads and answers."""
    log = ChatLog(random.Random(3), ChatConfig(), "Me")

    def scanned(order_no: str) -> int:
        return sum(1 for m in log.by_order.get(order_no, ()) if m.status == "unread")

    for step in range(60):
        order_no = f"o{step % 4}"
        if step % 7 == 6:
            log.page({"orderNo": order_no, "page": "1", "rows": "10"})  # the merchant reads
        elif step % 11 == 10:
            text = json.dumps({"type": "text", "uuid": f"u{step}", "orderNo": order_no,
                               "content": "ok", "self": True})
            log.receive(text, step, lambda no: True)  # answering reads the chat too
        elif step % 2:
            log.counterparty(order_no, "Buyer", f"line {step}", step)
        else:
            log.system(order_no, "buyer_payed", step)
        assert [log.unread(f"o{i}") for i in range(5)] == [scanned(f"o{i}") for i in range(5)]
        assert log.unread_total == sum(scanned(f"o{i}") for i in range(4))
    assert log.unread_total > 0


if __name__ == "__main__":
    for key in sorted(CASES):
        print(f"    {key!r}: {run(*CASES[key])!r},")
