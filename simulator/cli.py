"""`p2pbot sim`: the simulator alone on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from simulator.scenario import (
    Scenario,
    ScenarioError,
    UnknownScenario,
    available,
    generate_credential,
    load_scenario,
)

EXIT_OK = 0
EXIT_USAGE = 2
DEFAULT_PORT = 8765


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `sim` command's options."""
    parser.add_argument("--scenario", default="calm",
                        help=f"a built-in scenario ({', '.join(available())}) or a TOML file")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port on 127.0.0.1 (0: any)")
    parser.add_argument("--speed", type=float, default=None,
                        help="simulated seconds per real second (default: the scenario's)")
    parser.add_argument("--seed", type=int, default=None, help="override the scenario's seed")


def _credentials() -> tuple[str, str, bool]:
    """(key, secret, generated): from P2PBOT_API_KEY / P2PBOT_API_SECRET, or a new pair."""
    key = os.environ.get("P2PBOT_API_KEY") or ""
    secret = os.environ.get("P2PBOT_API_SECRET") or ""
    if key and secret:
        return key, secret, False
    return key or generate_credential(), secret or generate_credential(), True


def run(args: argparse.Namespace) -> int:
    """Load the scenario, serve until Ctrl-C / SIGTERM; 2 for an unknown or invalid scenario."""
    try:
        scenario = load_scenario(args.scenario)
    except UnknownScenario as exc:
        print(f"p2pbot sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ScenarioError as exc:
        print(f"p2pbot sim: invalid scenario:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.speed is not None and args.speed < 0:
        print("p2pbot sim: --speed must be >= 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(_serve(scenario, args))
    except KeyboardInterrupt:
        pass
    except ScenarioError as exc:
        print(f"p2pbot sim: invalid scenario:\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"p2pbot sim: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


async def _serve(scenario: Scenario, args: argparse.Namespace) -> None:
    from simulator.app import run_simulator

    key, secret, generated = _credentials()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with run_simulator(scenario, port=args.port, speed=args.speed, seed=args.seed,
                             api_key=key, api_secret=secret) as sim:
        if generated:
            print(f"generated credentials for key {scenario.keys[0].label!r}:")
            print(f"  P2PBOT_API_KEY={key}")
            print(f"  P2PBOT_API_SECRET={secret}")
        else:
            print("using P2PBOT_API_KEY / P2PBOT_API_SECRET from the environment")
        print(f"simulator ready: {sim.base_url}  scenario={scenario.name}  "
              f"speed={sim.clock.speed:g}  control={sim.base_url}/_sim/state", flush=True)
        await stop.wait()
    print("simulator stopped", flush=True)
