"""bot/capabilities."""
