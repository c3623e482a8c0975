"""What several commands share: settings, the client, the store, exit codes."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from bot.binance.client import SignedClient
from bot.binance.signing import Signer
from config.secret_files import SecretFileError
from config.settings import Settings
from state.db import Store, StoreError

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_DEGRADED = 3


class ConfigError(Exception):
    """A configuration problem: printed as is, exit status 2, nothing sent."""


def load_settings() -> Settings:
    """Settings from the environment; a bad value is a ConfigError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"P2PBOT_{'_'.join(str(p) for p in e['loc']).upper()}: "
            f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise ConfigError(f"environment: {problems}") from None
    except SecretFileError as exc:
        raise ConfigError(str(exc)) from None


@dataclass
class Credentials:
    """The key and signer resolved from the settings."""

    settings: Settings
    signer: Signer


def credentials(settings: Settings) -> Credentials:
    """Resolve the key and signer, or a ConfigError that says which variable is missing."""
    try:
        settings.require_key()
        return Credentials(settings, settings.signer())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def make_client(creds: Credentials) -> SignedClient:
    """A SignedClient for these settings."""
    s = creds.settings
    return SignedClient(
        s.base_url, api_key=s.api_key, signer=creds.signer, recv_window=s.recv_window,
        timeout=s.timeout, proxy=s.proxy,
    )


@asynccontextmanager
async def open_store(path: Path) -> AsyncIterator[Store]:
    """Open the store; a StoreError becomes a ConfigError."""
    try:
        store = await Store.open(path)
    except StoreError as exc:
        raise ConfigError(str(exc)) from None
    try:
        yield store
    finally:
        await store.close()


def fail(exc: ConfigError) -> int:
    """Print a configuration error and return exit status 2."""
    print(f"configuration error: {exc}", file=sys.stderr)
    return EXIT_CONFIG
