"""A plugin module that fails on import."""

raise RuntimeError("boom at import")
