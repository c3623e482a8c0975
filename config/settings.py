"""Secrets and environment (pydantic-settings): P2PBOT_* variables and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.binance.signing import HmacSigner, Signer, load_private_key_signer
from config import secret_files

DEFAULT_BASE_URL = "https://api.binance.com"


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
    config: Path = Path("config/example.toml")
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
