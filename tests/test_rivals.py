"""Competitor profiles (bot.pricing.rivals) from scripted snapshot sequences: no clock, no I/O."""

from __future__ import annotations

from decimal import Decimal as D

from bot.pricing.rivals import RivalBook, RivalSettings
from strategies.base import CompetitorAd, Side


def row(user: str, price: str, *, min_amount: str = "2000", max_amount: str = "50000",
        available: str = "1000") -> CompetitorAd:
    return CompetitorAd(adv_no=f"ad-{user}", user_no=user, nickname=f"nick-{user}",
                        price=D(price), min_amount=D(min_amount), max_amount=D(max_amount),
                        available=D(available), month_orders=321, completion_rate=D("0.97"))


def war(seconds: int = 600, answer_after: int = 2, every: int = 10, poll: int = 1) -> RivalBook:
    """A SELL market read every `poll` s: we undercut every `every` s; 'bot' answers us one
    tick below after `answer_after` s (never under 92.00); 'decoy' sits at 91.50 with a tiny max
    limit; 'human' changes its price every 120 s whatever we do; two regular ads."""
    book = RivalBook(Side.SELL)
    ours, bot, human = D("92.50"), D("92.45"), D("92.60")
    moved_at: int | None = None
    for t in range(0, seconds, poll):
        if moved_at is not None and t - moved_at >= answer_after and bot >= ours:
            bot, moved_at = max(ours - D("0.01"), D("92.00")), None
        if t % 120 == 60:
            human += D("0.03") if (t // 120) % 2 else D("-0.02")
        rows = sorted([row("decoy", "91.50", max_amount="400"), row("bot", str(bot)),
                       row("human", str(human)), row("r1", "92.90"), row("r2", "93.10")],
                      key=lambda r: r.price)
        book.observe(float(t), rows, ours)
        if t % every == 0 and t > 0 and bot <= ours:
            ours = max(bot - D("0.01"), D("91.00"))
            book.our_move(float(t), ours)
            moved_at = t
    return book


def test_a_rival_answering_within_2s_is_a_bot() -> None:
    book = war()
    bot = book.profile("bot")
    assert bot is not None
    assert bot.kind == "bot"
    assert bot.answers >= 10 and bot.answers >= bot.chances - 1  # not the one at its floor
    assert bot.answer_seconds == 2.0
    assert bot.nickname == "nick-bot" and bot.month_orders == 321


def test_its_floor_is_the_lowest_price_seen_for_a_sell_market() -> None:
    bot = war(seconds=3600).profile("bot")
    assert bot is not None
    assert bot.floor == D("92.00")
    assert bot.at_floor  # it sits there while we are below it


def test_a_decoy_is_a_decoy() -> None:
    decoy = war().profile("decoy")
    assert decoy is not None
    assert decoy.kind == "decoy"
    assert "tiny max limit" in decoy.decoy_signs and "only at the top" in decoy.decoy_signs
    assert decoy.answers == 0


def test_a_slow_human_merchant_is_neither() -> None:
    human = war().profile("human")
    assert human is not None
    assert human.kind == "human"
    assert human.reprices >= 4
    assert human.reprice_seconds == 120.0


def test_a_slow_answerer_is_not_a_bot() -> None:
    """The same rival answering 30 s after our move, read every second: not a bot."""
    slow = war(seconds=1800, answer_after=30, every=40).profile("bot")
    assert slow is not None
    assert slow.kind == "human"
    assert slow.answers > 0 and slow.answer_seconds == 30.0


def test_an_answer_seen_only_by_a_slow_read_is_bounded_by_it() -> None:
    """Read every 10 s, an answer given after 2 s is known to come within 10 s: still fast
    (first snapshot after our move, at the earliest 0 s after it)."""
    book = war(seconds=1200, every=20, poll=10)
    bot = book.profile("bot")
    assert bot is not None
    assert bot.kind == "bot"
    assert bot.answer_seconds == 10.0


def test_a_buy_market_floor_is_the_highest_price_seen() -> None:
    book = RivalBook(Side.BUY)
    for t, price in enumerate(["90.10", "90.30", "90.20"]):
        book.observe(float(t), [row("x", price)], D("90.00"))
    x = book.profile("x")
    assert x is not None and x.floor == D("90.30")


def test_profiles_are_keyed_by_user_id_not_nickname() -> None:
    book = RivalBook(Side.SELL)
    first = row("u1", "92.00")
    renamed = CompetitorAd(**{**first.__dict__, "nickname": "new name"})
    book.observe(0.0, [first], None)
    book.observe(1.0, [renamed], None)
    assert list(book.profiles()) == ["u1"]
    assert book.profiles()["u1"].nickname == "new name"


def test_memory_is_bounded() -> None:
    book = RivalBook(Side.SELL, RivalSettings(window=60.0, max_events=8, max_rivals=5))
    for t in range(300):
        rows = [row(f"u{(t + i) % 40}", f"{92 + D(i) / 100 + D(t % 3) / 1000}") for i in range(10)]
        book.observe(float(t), rows, D("92.05"))
        if t % 7 == 0:  # up past all of them, then down past all of them: chances for all
            book.our_move(float(t), D("93.00") if t % 14 else D("91.00"))
    assert len(book.rivals) <= 5
    assert any(r.chances for r in book.rivals.values())
    for r in book.rivals.values():  # the window moves on once a minute
        assert len(r.minutes) <= 3 and len(r.changes) <= 8 and len(r.chances) <= 8
        assert all(at >= 299 - 60 - 60 for at in r.chances)
        assert r.totals[1] == sum(m[1] for m in r.minutes)


def test_top_ranks_the_rivals_near_our_rank() -> None:
    book = war()
    names = [p.user_no for p in book.top(2)]
    assert names[0] in {"bot", "decoy"} and "r2" not in names


def test_a_rival_repricing_at_every_read_is_a_bot_even_without_answers() -> None:
    """Pinned to a floor that moves with the market, it never answers us (we sit past it) but
    changes its price at every read: a bot."""
    book = RivalBook(Side.SELL)
    for t in range(0, 300, 10):
        book.observe(float(t), [row("pinned", f"{D('92.50') + D(t % 7) / 100}")], D("92.00"))
    pinned = book.profile("pinned")
    assert pinned is not None and pinned.answers == 0
    assert pinned.kind == "bot" and pinned.reprice_seconds == 10.0
