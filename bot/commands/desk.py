"""`desk init NAME` lays out one account; `desk status URL...` shows every account in one table.

    p2pbot desk init alice                      # /etc/p2pbot/alice/ for p2pbot@alice.service
    p2pbot desk init alice --root ./accounts    # anywhere else (then the *_FILE variables)
    p2pbot desk status http://127.0.0.1:8080 bob=http://127.0.0.1:8081 --token-file T
    p2pbot desk kube deploy/kubernetes/values.example.toml | kubectl apply -f -
    p2pbot desk ready http://127.0.0.1:8080 --token-file T   # /readyz with the token: 0 or 1
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from bot.accounts.kube import RenderError, manifest_json, manifests
from bot.accounts.layout import DEFAULT_ROOT, LayoutError, init
from bot.accounts.overview import DEFAULT_TIMEOUT, Peer, read_all, render_table
from bot.commands.common import EXIT_CONFIG, EXIT_DEGRADED, EXIT_OK
from config.secret_files import SecretFileError, read_secret
from config.settings import http_url


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `init` and `status` subcommands."""
    sub = p.add_subparsers(dest="desk_command", metavar="SUBCOMMAND", required=True)
    i = sub.add_parser("init", help="lay out one account's directory (config, secret files)")
    i.add_argument("name", help="the account's name: the folder and the systemd instance")
    i.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                   help=f"where accounts live (default: {DEFAULT_ROOT})")
    i.add_argument("--port", type=int, default=None,
                   help="the account's [web] port (default: the first from 8080 no account uses)")
    s = sub.add_parser("status", help="every account's status in one table")
    s.add_argument("urls", nargs="+", metavar="[NAME=]URL",
                   help="each instance's web address, e.g. http://127.0.0.1:8080")
    s.add_argument("--token-file", type=Path, action="append", default=[],
                   help="a file holding the bearer token: once for every URL, or once per URL "
                        "in the same order")
    s.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds to wait for each instance (default: {DEFAULT_TIMEOUT:g})")


    k = sub.add_parser("kube", help="render the Kubernetes manifests of a desk from a values file")
    k.add_argument("values", type=Path, help="the values file (deploy/kubernetes/values.example.toml)")
    r = sub.add_parser("ready", help="ask an instance's /readyz with its token: exit 0 when ready, "
                                     "1 when not (a Kubernetes readiness probe)")
    r.add_argument("url", help="the instance's web address, e.g. http://127.0.0.1:8080")
    r.add_argument("--token-file", type=Path, default=None, help="a file holding the bearer token")
    r.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help=f"seconds to wait (default: {DEFAULT_TIMEOUT:g})")


def run(args: argparse.Namespace) -> int:
    """Run the subcommand."""
    runs = {"init": run_init, "status": run_status, "kube": run_kube, "ready": run_ready}
    return runs[args.desk_command](args)


def run_kube(args: argparse.Namespace) -> int:
    """Print the manifests (JSON, which kubectl takes as YAML); 2 on a bad value."""
    try:
        items = manifests(args.values)
    except RenderError as exc:
        print(f"desk kube: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.write(manifest_json(items))
    return EXIT_OK


async def _ready(url: str, token: SecretStr | None, within: float) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    timeout = aiohttp.ClientTimeout(total=within)
    async with aiohttp.ClientSession(timeout=timeout) as session, \
            session.get(url.rstrip("/") + "/readyz", headers=headers) as resp:
        return resp.status, (await resp.text())[:500]


def run_ready(args: argparse.Namespace) -> int:
    """0 when /readyz answers 200, 1 otherwise (what it said goes to stderr), 2 on bad input."""
    if not 0 < args.timeout <= 600:
        print(f"desk ready: --timeout {args.timeout:g} must be above 0 and at most 600",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        peers = peers_from([args.url], [args.token_file] if args.token_file else [])
    except (ValueError, SecretFileError) as exc:
        print(f"desk ready: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        status, body = asyncio.run(_ready(peers[0].url, peers[0].token, args.timeout))
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        print(f"desk ready: {args.url}: no answer ({type(exc).__name__})", file=sys.stderr)
        return 1
    if status != 200:
        print(f"desk ready: {args.url}/readyz answered {status}: {body}", file=sys.stderr)
        return 1
    return EXIT_OK


def run_init(args: argparse.Namespace) -> int:
    """Lay out the account and say what to do next."""
    if args.port is not None and not 1 <= args.port <= 65535:
        print(f"desk init: --port {args.port} is not a TCP port (1..65535)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        account = init(args.name, args.root, args.port)
    except LayoutError as exc:
        print(f"desk init: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    creds = account.credentials
    print(f"account {account.name} laid out in {account.folder}:\n"
          f"  {account.config}  (a dry run until you set dry_run = false)\n"
          f"  {creds}/api_key, api_secret  (mode 600, empty: paste the key's values)\n"
          f"  {creds}/web_token  (generated: the bearer token of /metrics and /api/status)\n"
          "next:\n"
          f"  edit {account.config}; fill in the two secret files\n"
          f"  P2PBOT_CONFIG={account.config} p2pbot check-config\n"
          f"  sudo systemctl enable --now p2pbot@{account.name}   (root /etc/p2pbot)")
    return EXIT_OK


def peers_from(urls: list[str], token_files: list[Path]) -> list[Peer]:
    """The peers named on the command line; ValueError or SecretFileError on a bad one."""
    if len(token_files) not in (0, 1, len(urls)):
        raise ValueError(f"{len(token_files)} --token-file for {len(urls)} URLs: give one for "
                         "all, or one per URL")
    peers = []
    for i, given in enumerate(urls):
        name, eq, url = given.partition("=")
        if not eq or "://" in name:
            name, url = "", given
        http_url(url, "an instance's web address")
        files = token_files[i if len(token_files) > 1 else 0:][:1] if token_files else []
        token = SecretStr(read_secret(files[0], "--token-file")) if files else None
        peers.append(Peer(url.rstrip("/"), token, name))
    return peers


def run_status(args: argparse.Namespace) -> int:
    """Print the table; 0 when every account answered and is ready, else 3."""
    if not 0 < args.timeout <= 600:
        print(f"desk status: --timeout {args.timeout:g} must be above 0 and at most 600",
              file=sys.stderr)
        return EXIT_CONFIG
    try:
        peers = peers_from(args.urls, args.token_file)
    except (ValueError, SecretFileError) as exc:
        print(f"desk status: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    rows = asyncio.run(read_all(peers, args.timeout))
    print(render_table(rows))
    return EXIT_OK if all(r.health == "ok" for r in rows) else EXIT_DEGRADED
