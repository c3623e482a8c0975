"""A plugin module whose own dependency is not installed."""

import p2pbot_no_such_dependency  # noqa: F401
