"""The backtest: "what would this config have done?" over a recording or a scenario.

It stands above the bot and the simulator (it runs the bot's real pricing engine and
borrows the simulator's rival and order models), so it lives here, not in `bot`.
The recording itself and its export format are bot.recording's.

- `world`: the market history replayed on a virtual clock, with the simulator's models where
  our price differs from the one recorded.
- `runner`: the real pricing engine over that history, one config at a time.
- `scenario`: a history generated from a simulator scenario instead of a recording.
- `report`, `html`: the comparison; `sweep`: a grid of configs ranked by an objective.
- `command`: `p2pbot backtest`.
"""
