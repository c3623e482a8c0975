"""What an order's change calls for: the reaction rules, templates and alert texts."""

from __future__ import annotations

from decimal import Decimal
from itertools import count
from pathlib import Path

import pytest

from bot.orders.reactions import alert_text, plan_change, plan_stuck, render, template_values
from config.loader import load_config
from config.models import TEMPLATE_SAMPLE, Reaction, Reactions
from p2pbot.cli import main
from simulator.app import Simulator
from state.orders import OrderRecord, Step

ORDER = "22812345678901234567"
NOW = 1_751_796_600.0
CFG = Reactions(new=Reaction(chat="Hi {nickname}", notify=True), buyer_paid=Reaction(notify=True),
                completed=Reaction(chat="Thanks {nickname}"), cancelled=Reaction(),
                appeal=Reaction(chat="About the appeal", notify=True), stuck=Reaction(notify=True))


def rec(status: int, **kw: object) -> OrderRecord:
    full: dict[str, object] = dict(
        adv_no="11000000000000000001", side="SELL", asset="USDT", fiat="RUB",
        amount=Decimal("100.00"), total=Decimal("9250.00"), price=Decimal("92.50"),
        counterparty="alice", pay_method="Tinkoff", created_at=NOW - 300, source="list")
    full.update(kw)
    return OrderRecord(ORDER, status, **full)  # type: ignore[arg-type]


def uuids() -> object:
    numbers = count(1)
    return lambda: f"u-{next(numbers)}"


def reactions_of(stored: OrderRecord | None, seen: OrderRecord) -> list[tuple[str, str]]:
    plan = plan_change(stored, seen, CFG, NOW, uuids())  # type: ignore[arg-type]
    return [(i.status, i.action) for i in plan.items]


def test_a_new_open_order_is_greeted_and_announced() -> None:
    plan = plan_change(None, rec(1), CFG, NOW, uuids())  # type: ignore[arg-type]
    assert plan.steps == (Step(None, 1),)
    assert [(i.status, i.action, i.payload.get("content")) for i in plan.items] == [
        ("new", "chat", "Hi alice"), ("new", "notify", None)]
    assert plan.items[0].payload["uuid"] == "u-1"
    assert plan.items[1].payload["key"] == f"order:{ORDER}:new"


def test_an_order_first_seen_paid_is_greeted_and_its_payment_announced() -> None:
    assert reactions_of(None, rec(2)) == [("new", "chat"), ("new", "notify"),
                                          ("buyer_paid", "notify")]


@pytest.mark.parametrize("status", [4, 6, 7])
def test_an_order_first_seen_finished_is_recorded_without_any_reaction(status: int) -> None:
    plan = plan_change(None, rec(status), CFG, NOW, uuids())  # type: ignore[arg-type]
    assert plan.write and plan.steps[-1].new == status and plan.items == ()


def test_a_gap_infers_the_steps_and_reacts_only_to_what_was_seen() -> None:
    plan = plan_change(rec(1), rec(4), CFG, NOW, uuids())  # type: ignore[arg-type]
    assert plan.steps == (Step(1, 2, inferred=True), Step(2, 4))
    assert [(i.status, i.action) for i in plan.items] == [("completed", "chat")]


def test_a_stale_status_changes_nothing() -> None:
    plan = plan_change(rec(4), rec(2), CFG, NOW, uuids())  # type: ignore[arg-type]
    assert not plan.write and plan.steps == () and plan.items == ()
    assert plan.record.status == 4


def test_new_details_of_an_open_order_only_repeat_its_greeting_key() -> None:
    plan = plan_change(rec(1, pay_method=None), rec(1), CFG, NOW, uuids())  # type: ignore[arg-type]
    assert plan.write and plan.steps == ()
    assert {(i.status, i.action) for i in plan.items} == {("new", "chat"), ("new", "notify")}


def test_an_order_heard_of_in_chat_waits_for_its_details_before_reacting() -> None:
    bare = OrderRecord(ORDER, 2, source="chat")
    plan = plan_change(None, bare, CFG, NOW, uuids())  # type: ignore[arg-type]
    assert plan.steps[-1] == Step(1, 2) and plan.items == ()
    assert reactions_of(plan.record, rec(2)) == [("new", "chat"), ("new", "notify"),
                                                 ("buyer_paid", "notify")]


def test_appeal_and_completion() -> None:
    assert reactions_of(rec(2), rec(3)) == [("new", "chat"), ("new", "notify"),
                                            ("appeal", "chat"), ("appeal", "notify")]
    assert reactions_of(rec(3), rec(4)) == [("completed", "chat")]
    assert reactions_of(rec(1), rec(7)) == []  # cancelled is configured empty


def test_the_stuck_alert_says_how_long_it_has_been_paid() -> None:
    (item,) = plan_stuck(rec(2), NOW - 17 * 60, CFG, NOW)
    assert (item.status, item.action) == ("stuck", "notify")
    assert "paid for 17 min" in item.payload["text"]
    assert plan_stuck(OrderRecord(ORDER, 2), NOW - 3600, CFG, NOW) == []


@pytest.mark.parametrize(("side", "todo"), [
    ("SELL", "check that 9250.00 RUB from alice arrived (Tinkoff), then release in the Binance app"),
    ("BUY", "the order is marked paid: wait for alice to release"),
])
def test_an_alert_carries_everything_needed_to_act(side: str, todo: str) -> None:
    text = alert_text("buyer_paid", rec(2, side=side), NOW)
    for part in (ORDER, "100.00 USDT", "9250.00 RUB", "at 92.50", "counterparty alice",
                 "pay method Tinkoff", "age 5 min", f"To do: {todo}",
                 "The bot never releases coins or marks orders paid."):
        assert part in text


def test_templates_get_every_field_the_config_validates_with_the_same_types() -> None:
    values = template_values(rec(1))
    assert set(values) == set(TEMPLATE_SAMPLE)
    for name, sample in TEMPLATE_SAMPLE.items():
        assert type(values[name]) is type(sample), name
    text = "{nickname:>6}|{amount:.2f}|{total:,.2f}|{price}|{order_no}|{pay_method!r}|{asset}{fiat}"
    assert render(text, rec(1)) == " alice|100.00|9,250.00|92.50|" + ORDER + "|'Tinkoff'|USDTRUB"


def test_run_exits_2_on_an_unknown_template_field_before_any_request(
        tmp_path: Path, fake_sim: Simulator, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bot.toml"
    path.write_text('[orders.on.new]\nchat = "Hi {nick}, pay {total}"\n')
    for name, value in {"BASE_URL": fake_sim.base_url, "API_KEY": fake_sim.api_key,
                        "API_SECRET": fake_sim.api_secret or "", "DB": str(tmp_path / "bot.db"),
                        "CONFIG": str(path)}.items():
        monkeypatch.setenv(f"P2PBOT_{name}", value)
    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    assert "unknown field 'nick'" in capsys.readouterr().err
    assert fake_sim.requests() == []


# --- templates per side (the merchant's side of the order) --------------------------------


def test_a_side_table_picks_the_message_for_the_merchants_side() -> None:
    cfg = Reactions.model_validate({"new": {
        "chat": "Hello {nickname}", "notify": True,
        "sell": {"chat": "Pay {total} {fiat} with {pay_method}"},
        "buy": {"chat": "I pay you {total} {fiat} shortly", "notify": False}}})

    def planned(side: str) -> list[tuple[str, object]]:
        plan = plan_change(None, rec(1, side=side), cfg, NOW, uuids())  # type: ignore[arg-type]
        return [(i.action, i.payload.get("content")) for i in plan.items]

    assert planned("SELL") == [("chat", "Pay 9250.00 RUB with Tinkoff"), ("notify", None)]
    assert planned("BUY") == [("chat", "I pay you 9250.00 RUB shortly")]


def test_without_a_side_table_both_sides_get_the_common_reaction() -> None:
    cfg = Reactions.model_validate({"new": {"chat": "Hello {nickname}",
                                            "buy": {"notify": True}}})
    sell = plan_change(None, rec(1, side="SELL"), cfg, NOW, uuids())  # type: ignore[arg-type]
    buy = plan_change(None, rec(1, side="BUY"), cfg, NOW, uuids())  # type: ignore[arg-type]
    assert [(i.action, i.payload.get("content")) for i in sell.items] == [("chat", "Hello alice")]
    assert [(i.action, i.payload.get("content")) for i in buy.items] == [
        ("chat", "Hello alice"), ("notify", None)]


def test_the_example_greeting_asks_only_the_buyer_to_pay() -> None:
    example = Path(__file__).resolve().parents[1] / "config" / "example.toml"
    on = load_config(example).app.orders.on
    greet = {side: plan_change(None, rec(1, side=side), on, NOW, uuids()).items[0]  # type: ignore[arg-type]
             for side in ("SELL", "BUY")}
    assert "Pay with Tinkoff" in greet["SELL"].payload["content"]
    assert "pay" not in greet["BUY"].payload["content"].lower().replace("i will pay", "")
    assert "I will pay" in greet["BUY"].payload["content"]


# --- a new store: orders created before it (bot.orders.reactions: store_since) ------------------

SINCE = NOW - 60  # the store began following orders a minute ago; rec() was created 5 min ago


def reactions_since(stored: OrderRecord | None, seen: OrderRecord) -> list[tuple[str, str]]:
    plan = plan_change(stored, seen, CFG, NOW, uuids(), store_since=SINCE)  # type: ignore[arg-type]
    return [(i.status, i.action) for i in plan.items]


@pytest.mark.parametrize("status", [1, 2, 3])
def test_an_open_order_created_before_the_store_is_recorded_without_any_reaction(
        status: int) -> None:
    plan = plan_change(None, rec(status), CFG, NOW, uuids(), store_since=SINCE)  # type: ignore[arg-type]
    assert plan.write and plan.record.status == status and plan.steps[-1].new == status
    assert plan.items == ()


def test_a_step_seen_after_the_first_sighting_gets_its_reaction_but_never_a_greeting() -> None:
    assert reactions_since(rec(1), rec(2)) == [("buyer_paid", "notify")]
    assert reactions_since(rec(2), rec(4)) == [("completed", "chat")]
    assert reactions_since(rec(1, pay_method=None), rec(1)) == []  # details filled in: no greeting


def test_an_order_first_heard_in_chat_before_the_store_gets_no_late_reaction_when_filled_in() -> None:
    heard = OrderRecord(ORDER, 2, source="chat")  # no details: its reactions waited
    assert reactions_since(heard, rec(2)) == []
    assert reactions_since(heard, rec(4)) == [("completed", "chat")]  # a step seen since


def test_an_order_created_after_the_store_began_is_greeted_as_always() -> None:
    assert reactions_since(None, rec(1, created_at=SINCE)) == [("new", "chat"), ("new", "notify")]
    assert reactions_since(None, rec(2, created_at=SINCE + 1)) == [
        ("new", "chat"), ("new", "notify"), ("buyer_paid", "notify")]


def test_an_existing_store_or_an_unknown_creation_time_keeps_the_rules_as_they_were() -> None:
    assert reactions_of(None, rec(1)) == [("new", "chat"), ("new", "notify")]  # store_since None
    assert reactions_since(None, rec(1, created_at=None)) == [("new", "chat"), ("new", "notify")]
