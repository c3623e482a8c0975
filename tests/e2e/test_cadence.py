"""The adaptive market cadence end to end (issue 14, item 3): the real bot on the simulator's
stepped clock searches a quiet market at the slow end of its band, speeds up to the fast end
when a rival moves, and slows down again once the market is quiet; the simulator's request
log is the judge, /api/status and /metrics say the interval and why."""

from __future__ import annotations

from decimal import Decimal

from bot.chat.session import ChatTimings
from bot.ops import status_api as status
from bot.ops.metrics import BotMetrics
from bot.pricing.cadence import QUIET
from simulator.app import run_simulator
from tests.e2e.support import SELL_ADV as SELL_AD
from tests.e2e.support import START_MS, Lives, Stepper, loop_watch, scenario

MARKET = ("USDT", "RUB", "BUY")  # our SELL ad's market: a BUY search finds SELL ads
CONFIG = f"""
[bot]
orders_interval = 60
my_ads_interval = 300

[cadence]
fast = 1
slow = 10

[[ads]]
name = "sell"
adv_no = "{SELL_AD}"
strategy = "fixed"
[ads.params]
price = "93.00"
[ads.guards]
floor = "80"
ceiling = "99"
"""


def searches(sim, since_ms: int, until_ms: int) -> int:  # type: ignore[no-untyped-def]
    """Searches the bot sent in [since, until)."""
    return sum(1 for r in sim.requests("search", since=since_ms) if r["time_ms"] < until_ms)


def freeze(market) -> None:  # type: ignore[no-untyped-def]
    """No competitor reprices by itself any more: the market is quiet until the test moves it."""
    for book in market.books.values():
        for listing in book:
            listing.next_reprice_ms = 10**15


async def test_a_market_speeds_up_when_a_rival_moves_and_slows_down_when_quiet(
        tmp_path, inline_store) -> None:  # type: ignore[no-untyped-def]
    async with run_simulator(scenario(speed=0, three_ads=False), start_ms=START_MS,
                             stepped=True) as sim:
        config = tmp_path / "bot.toml"
        config.write_text(CONFIG, encoding="utf-8")
        lives = Lives(sim, config, tmp_path / "bot.db", 7, ChatTimings())
        stepper = Stepper(sim)
        market = sim.world.markets[("USDT", "RUB")]
        freeze(market)
        with loop_watch(lives):
            life = lives.start()
            await stepper.to(START_MS + 60_000)  # a quiet minute: down to the slow end
            bot = life.bot
            assert bot is not None and life.error is None, life.error
            assert bot.cadence.markets[MARKET].pace.reason == QUIET
            quiet_from = stepper.now_ms
            await stepper.to(quiet_from + 40_000)
            quiet = searches(sim, quiet_from, stepper.now_ms)

            rival = min(market.books["SELL"], key=lambda ad: ad.price)
            rival.price, rival.update_ms = Decimal("92.10"), stepper.now_ms  # undercuts us
            moved_at = stepper.now_ms
            while bot.cadence.markets[MARKET].pace.interval > 1.0:  # the next read sees it ...
                assert stepper.now_ms - moved_at <= 10_500, "the move was never seen"
                await stepper.to(stepper.now_ms + 250)
            fast = bot.cadence.markets[MARKET].pace
            shown = status.markets(bot)[bot.cadence.markets[MARKET].name]
            scrape = BotMetrics(bot).exposition().decode()
            fast_from = stepper.now_ms
            await stepper.to(fast_from + 3_500)  # ... and the next reads come 1 s, then 2 s apart
            burst = searches(sim, fast_from, stepper.now_ms)

            await stepper.to(stepper.now_ms + 60_000)  # nobody moves: it slows down again
            calm = bot.cadence.markets[MARKET].pace
            calm_from = stepper.now_ms
            await stepper.to(calm_from + 40_000)
            after_calm = searches(sim, calm_from, stepper.now_ms)
            await lives.stop()
            assert life.error is None, life.error

    assert 3 <= quiet <= 5  # every 10 s over 40 s
    assert fast.interval == 1.0 and fast.reason in ("moving", "rank lost")
    assert shown == {"interval": 1.0, "why": fast.reason}
    assert f'p2pbot_market_interval_seconds{{market="{bot.cadence.markets[MARKET].name}",' \
           f'reason="{fast.reason}"}} 1.0' in scrape
    assert burst >= 2  # a search a second
    assert (calm.interval, calm.reason) == (10.0, QUIET)
    assert 3 <= after_calm <= 5
