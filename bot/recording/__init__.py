"""Recording what each pricing decision saw, and the portable export file (`p2pbot export`).

The backtest that replays it lives above the bot and the simulator: p2pbot.backtest.
"""
