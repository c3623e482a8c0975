"""bot/pricing."""
