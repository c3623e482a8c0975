"""Secrets and environment (pydantic-settings): P2PBOT_* variables and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.binance.signing import HmacSigner, Signer, load_private_key_signer
from config import secret_files

DEFAULT_BASE_URL = "https://api.binance.com"
EXAMPLE_CONFIG = Path(__file__).resolve().with_name("example.toml")  # shipped with the package
LOCAL_CONFIG = Path("config.toml")  # in the working directory


class Settings(BaseSettings):
    """Everything the bot reads from the environment. Secrets are SecretStr and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="P2PBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None
    private_key_file: Path | None = None
    private_key_password: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    db: Path = Path("p2pbot.db")
    config: Path | None = None  # None: see config_path()
    proxy: str | None = None
    recv_window: int = Field(default=5000, ge=1, le=60000)
    timeout: float = Field(default=10.0, gt=0, le=120)
    telegram_token: SecretStr | None = None
    web_token: SecretStr | None = None  # when set, the web server requires `Bearer <token>`
    # files holding a secret (mode 600), read at start; systemd: $CREDENTIALS_DIRECTORY/<name>
    api_key_file: Path | None = None
    api_secret_file: Path | None = None
    telegram_token_file: Path | None = None
    web_token_file: Path | None = None
    private_key_password_file: Path | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        """An http(s) address with a host; anything else would fail at every request."""
        return http_url(value, "the exchange's address").rstrip("/")

    @field_validator("proxy")
    @classmethod
    def _proxy_is_http(cls, value: str | None) -> str | None:
        """An http(s) proxy address (aiohttp speaks no other kind); empty means no proxy."""
        if value is None or not value.strip():
            return None
        return http_url(value, "an HTTP proxy's address", show=False,  # it may hold a password
                        form="http://host:port or http://user:password@host:port")

    @field_validator("api_secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        """An empty secret would sign every request with an empty key: refused, not ignored."""
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is set but empty: put the API key's secret in it, or unset it "
                             "(an Ed25519/RSA key goes in P2PBOT_PRIVATE_KEY_FILE)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _secret_files(cls, data: Any) -> Any:
        """Secrets from `*_FILE` variables and $CREDENTIALS_DIRECTORY (SecretFileError: exit 2)."""
        if isinstance(data, dict):
            data = dict(data)
            secret_files.resolve(data)
        return data

    @model_validator(mode="after")
    def _private_key_is_private(self) -> Settings:
        if self.private_key_file is not None and self.private_key_file.exists():
            secret_files.check_private(self.private_key_file, "P2PBOT_PRIVATE_KEY_FILE")
        return self

    def signer(self) -> Signer:
        """The signer the key type calls for: a private key file (Ed25519/RSA) or the HMAC secret."""
        if self.private_key_file is not None:
            return load_private_key_signer(self.private_key_file, self.private_key_password)
        if self.api_secret is None:
            raise ValueError(
                "no secret: set P2PBOT_API_SECRET (HMAC key) or P2PBOT_PRIVATE_KEY_FILE (Ed25519/RSA)"
            )
        return HmacSigner(self.api_secret)

    def require_key(self) -> SecretStr:
        """The API key, or a clear error naming the variable."""
        if self.api_key is None or not self.api_key.get_secret_value():
            raise ValueError("no API key: set P2PBOT_API_KEY")
        return self.api_key


_URL_FORM = "https://host or http://host:port"


def http_url(value: str, what: str, *, show: bool = True, form: str = _URL_FORM) -> str:
    """`value` when it is an http:// or https:// URL with a host and no query; else ValueError
    (quoting the value only when `show`)."""
    text = value.strip()
    said = repr(value) if show else "the value"
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{said} is not {what}: write it as {form}")
    if parts.query or parts.fragment:
        raise ValueError(f"{said}: {what} takes no query (?...) or fragment (#...): "
                         f"write it as {form}")
    return text


def config_path(explicit: Path | None = None, configured: Path | None = None) -> Path:
    """The strategy file: --config, else P2PBOT_CONFIG, else ./config.toml when it exists,
    else the example shipped with the package (found wherever the command runs from)."""
    if explicit is not None:
        return explicit
    if configured is not None:
        return configured
    return LOCAL_CONFIG if LOCAL_CONFIG.is_file() else EXAMPLE_CONFIG
