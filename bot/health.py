"""The health states of endpoints and capabilities."""

from __future__ import annotations

from enum import StrEnum


class EndpointState(StrEnum):
    """What the bot last learned about one endpoint for this key."""

    UNKNOWN = "unknown"  # not called yet
    AVAILABLE = "available"  # answered with the success envelope
    UNREGISTERED = "unregistered"  # -2008: not enabled for this key (yet)
    FAILING = "failing"  # timeouts, 5xx, 429, connection errors: passing trouble
    REFUSED = "refused"  # -2015, -1022, 451, 403: a person must act
    BOGUS = "bogus"  # HTTP 200 with an empty or non-envelope body: not a real endpoint


# A call on an endpoint in one of these states is not sent (no weight spent).
BLOCKED = frozenset({EndpointState.UNREGISTERED, EndpointState.REFUSED, EndpointState.BOGUS})
# Endpoint states the background prober re-tests. Refused and bogus are in too: during a
# key rollout -1022 and empty answers come and go (docs/exchange.md §10), and a person
# fixing a whitelist should not need a restart; the backoff keeps it to one request in
# up to 30 minutes.
PROBED = frozenset({EndpointState.UNREGISTERED, EndpointState.FAILING, EndpointState.REFUSED,
                    EndpointState.BOGUS})


class CapState(StrEnum):
    """A feature of the bot."""

    UNCHECKED = "unchecked"  # the source to try has endpoints not called yet: not seen working
    ENABLED = "enabled"  # running on its primary source
    DEGRADED = "degraded"  # running on an alternative source
    DISABLED = "disabled"  # no source works: the feature is parked


# Capability states that have been seen working. UNCHECKED is not one of them: a capability
# is still *tried* while unchecked (its first ordinary call checks it), but never reported,
# counted as ready or handed to a strategy as working before it answered.
WORKING = frozenset({CapState.ENABLED, CapState.DEGRADED})
