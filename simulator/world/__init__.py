"""simulator/world."""
