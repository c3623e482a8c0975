"""bot/ops."""
