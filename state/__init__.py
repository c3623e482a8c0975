"""p2pbot."""
