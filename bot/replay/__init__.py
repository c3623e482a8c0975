"""Recording, export and replay of the pricing engine: "what would this config have done?".

- `recorder`: what the running bot keeps per decision (no extra request).
- `data`: the portable export file (JSON lines, gzip) and its reader.
- `world`: the market history replayed on a virtual clock, with the simulator's models where
  our price differs from the one recorded.
- `runner`: the real pricing engine over that history, one config at a time.
- `report`, `html`: the comparison; `sweep`: a grid of configs ranked by an objective.
"""
