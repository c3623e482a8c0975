"""The Telegram console end to end: the fake Telegram API on 127.0.0.1, the real bot on the
simulator. Commands pause repricing, change a guard after /confirm (kept across a restart),
and a stranger's command is ignored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from bot.app import Bot
from bot.pricing.pollers import MarketPoller
from simulator.app import Simulator, run_simulator
from tests.e2e.support import SELL_AD, sim_client, write_config
from tests.support import TOKEN, FakeTelegram, fake_telegram

OWNER = 4242
STRANGER = 666
AD = SELL_AD.format(floor="80", ceiling="99")


def telegram(url: str, extra: str = "", keys: str = "") -> str:
    """`[bot]` keys, then the [telegram] table (write_config puts ads after it)."""
    return (f"{extra}\n[telegram]\nenabled = true\nallowed_chat_ids = [{OWNER}]\n"
            f"api_url = \"{url}\"\n{keys}\n")


@asynccontextmanager
async def console_bot(sim: Simulator, tmp: Path, fake: FakeTelegram, extra: str = "",
                      db: str = "console.db", keys: str = "") -> AsyncIterator[Bot]:
    """A started bot whose console polls the fake Telegram API (the test drives pricing)."""
    from config.loader import load_config
    from config.settings import Settings
    from state.db import Store
    from tests.support import ClientClock

    clock = ClientClock(sim.clock)
    store = await Store.open(tmp / db)
    client = sim_client(sim, clock, timeout=2.0)
    settings = Settings(telegram_token=TOKEN)  # type: ignore[arg-type]
    tasks: list[asyncio.Task[Any]] = []
    try:
        b = Bot(load_config(write_config(tmp, AD, telegram(fake.url, extra, keys))), client, store,
                clock=clock, settings=settings)
        await b.start()
        assert b.console is not None
        tasks = [asyncio.create_task(b.console.poll()), asyncio.create_task(b.console.sender())]
        yield b
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if tasks:
            await b.console.close()
        await client.close()
        await store.close()


async def ask(fake: FakeTelegram, text: str) -> str:
    fake.say(OWNER, text)
    chat, answer = await fake.answer()
    assert chat == OWNER
    return answer


async def decide(bot: Bot) -> Any:
    poller = next(p for p in bot.pollers if isinstance(p, MarketPoller))
    return await bot.engine.evaluate(bot.ads[0], await poller.fetch("search"))


async def test_pause_stops_repricing_of_the_ad_and_resume_lets_it_go_on(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            assert "paused ad sell" in await ask(fake, "/pause sell")
            row = await decide(bot)
            assert row.result == "held" and "enabled = false" in row.reason
            assert sim.requests("update_ad") == []
            assert "paused" in await ask(fake, "/status")
            assert "resumed ad sell" in await ask(fake, "/resume sell")
            row = await decide(bot)
            assert row.result == "applied" and len(sim.requests("update_ad")) == 1


async def test_pause_all_is_the_kill_switch(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            assert "kill switch is on" in await ask(fake, "/pause all")
            assert bot.engine.kill_switch
            row = await decide(bot)
            assert row.result == "held" and sim.requests("update_ad") == []
            assert "kill switch is off" in await ask(fake, "/resume")
            assert not bot.engine.kill_switch


async def test_set_floor_after_confirm_survives_a_restart(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            shown = await ask(fake, "/set sell floor 85.5")
            assert "floor 80 -> 85.5" in shown and "/confirm" in shown
            assert bot.ads[0].loaded.config.guards.floor == Decimal(80)  # not before /confirm
            done = await ask(fake, "/confirm")
            assert "floor is 85.5" in done
            assert bot.ads[0].loaded.config.guards.floor == Decimal("85.5")
            row = await decide(bot)
            assert row.target is None or row.target >= Decimal("85.5")
            assert "sell: floor = 85.5 (by merchant)" in await ask(fake, "/overrides")
        async with console_bot(sim, tmp_path, fake) as again:  # a restart on the same store
            assert again.ads[0].loaded.config.guards.floor == Decimal("85.5")
            assert again.toml.ads[0].config.guards.floor == Decimal(80)  # the file is untouched
            assert "cleared 1" in await ask(fake, "/clear sell")
            assert again.ads[0].loaded.config.guards.floor == Decimal(80)


async def test_a_value_outside_the_guards_is_refused_with_the_reason(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            said = await ask(fake, "/set sell floor 120")
            assert said.startswith("refused:") and "must be below the ceiling (99)" in said
            assert "nothing to confirm" in await ask(fake, "/confirm")
            assert "has no step" not in await ask(fake, "/set sell step 0.05")  # undercut has one
            assert bot.ads[0].loaded.config.guards.floor == Decimal(80)


async def test_malformed_commands_answer_with_their_usage(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake):
            assert "Usage: /set AD floor|ceiling|step VALUE" in await ask(fake, "/set sell floor")
            assert "no ad 'nope'" in await ask(fake, "/pause nope")
            assert "unknown command /frob" in await ask(fake, "/frob")


async def test_a_strangers_command_is_ignored_and_logged_once(tmp_path) -> None:
    said: list[str] = []
    sink = logger.add(lambda m: said.append(m.record["message"]), level="WARNING")
    try:
        async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
            async with console_bot(sim, tmp_path, fake) as bot:
                fake.say(STRANGER, "/pause all", username="mallory")
                fake.say(STRANGER, "/pause all", username="mallory")
                assert "Ads:" in await ask(fake, "/status")  # the owner's answer comes first
                assert not bot.engine.kill_switch
                assert all(chat == OWNER for chat, _ in fake.sent)
    finally:
        logger.remove(sink)
    assert len([m for m in said if "ignored a message from chat 666" in m]) == 1


async def test_hide_in_a_dry_run_says_so_and_sends_nothing(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake, extra="dry_run = true"):
            assert "dry run: would hide ad sell; nothing sent" in await ask(fake, "/hide sell")
            assert sim.requests("update_ad") == []


async def test_hide_and_show_write_the_ads_visibility(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake):
            assert "hidden from search" in await ask(fake, "/hide sell")
            assert "shown in search" in await ask(fake, "/show sell")
            sent = [r for r in sim.requests("update_ad")]
            assert len(sent) == 2


async def test_history_lists_the_ads_last_decisions(tmp_path) -> None:
    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            await decide(bot)
            said = await ask(fake, "/history sell 3")
            assert "ad sell, last 1 decision(s)" in said and "applied" in said


@pytest.mark.parametrize("wrong", ["999:not-the-token"])
async def test_a_wrong_token_is_said_without_the_token(tmp_path, wrong) -> None:
    from pydantic import SecretStr

    from bot.console.telegram import ConsoleError, TelegramConsole
    from config.models import TelegramConfig

    async with fake_telegram() as fake:
        console = TelegramConsole(SecretStr(wrong), TelegramConfig(api_url=fake.url),
                                  handler=lambda *a: asyncio.sleep(0, ""))
        try:
            with pytest.raises(ConsoleError) as err:
                await console._call("getUpdates", {}, 5)
        finally:
            await console.close()
    assert "HTTP 401" in str(err.value) and wrong not in str(err.value)



async def test_a_silent_telegram_api_fills_the_queue_and_answers_are_dropped_and_counted(
        tmp_path) -> None:
    from bot.ops.metrics import BotMetrics

    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        fake.hang_sends = True
        async with console_bot(sim, tmp_path, fake, keys="queue_size = 2") as bot:
            for _ in range(5):
                fake.say(OWNER, "/status")
            await fake.answer()  # the sender is stuck on the first answer
            await fake.next_poll()  # the five commands were handled
            console = bot.console
            assert console.handled == 5
            assert console.dropped == 2  # one on the wire, two queued, two dropped
            row = await decide(bot)  # pricing does not wait on Telegram
            assert row.result == "applied"
            text = BotMetrics(bot).exposition().decode()
            assert "p2pbot_console_dropped_total 2.0" in text
            fake.release.set()


async def test_ack_from_the_console_stops_the_alert(tmp_path) -> None:
    from state.alerts import AlertStore

    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            alerts = AlertStore(bot.store)
            row = await alerts.raise_("order:22812345678901234567:buyer_paid", "buyer_paid",
                                      "Buyer paid: order 22812345678901234567", bot.clock.time())
            assert f"[alert {row.id}] buyer_paid (open" in await ask(fake, "/alerts")
            assert "Alerts open: 1" in await ask(fake, "/status")
            said = await ask(fake, f"/ack {row.id}")
            assert said.startswith(f"acknowledged: [alert {row.id}]") and "by telegram:merchant" in said
            assert await alerts.open() == []
            assert "no alert 99" in await ask(fake, "/ack 99")


async def test_a_command_that_waited_while_the_bot_was_down_is_not_obeyed(tmp_path) -> None:
    import time

    async with run_simulator("calm", speed=0, seed=4) as sim, fake_telegram() as fake:
        async with console_bot(sim, tmp_path, fake) as bot:
            fake.say(OWNER, "/pause all", date=int(time.time()) - 3600)
            chat, said = await fake.answer()
            assert chat == OWNER and said.startswith("not obeyed: '/pause all' was sent 60 min ago")
            assert not bot.engine.kill_switch
