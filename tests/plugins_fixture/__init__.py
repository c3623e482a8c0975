"""Fake market data and small fake plugin modules for the strategy tests."""
