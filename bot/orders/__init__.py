"""bot/orders."""
