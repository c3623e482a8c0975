"""The control and observation API under /_sim/ (JSON, no auth), and the same calls in-process.

| route | what |
|---|---|
| GET /_sim/requests?endpoint=&since=&after= | exchange requests (since: simulated ms; after: id) |
| DELETE /_sim/requests | forget them |
| GET /_sim/registration?key= | a key's configured behaviours and what each endpoint answers now |
| POST /_sim/registration | {"key"?, "endpoint", "behaviour"} or {"key"?, "timeline": [...]} |
| GET /_sim/faults, POST /_sim/faults, DELETE /_sim/faults | list, add (a fault rule), clear |
| GET /_sim/clock, POST /_sim/clock/advance {"seconds": N} | read / move the virtual clock |
| DELETE /_sim/limits | forget weight counters and bans |
| GET /_sim/state | scenario, keys, registration summary, faults, limits |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from simulator.gateway import Gateway
from simulator.scenario import FaultSpec

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Control:
    """Reads and steers a running simulator; the HTTP routes call these same methods."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def requests(self, endpoint: str | None = None, since: int | None = None,
                 after: int | None = None) -> list[dict[str, Any]]:
        """Recorded requests, optionally for one endpoint, since a simulated ms, after an id."""
        return self.gateway.log.query(endpoint, since, after)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self.gateway.log.clear()

    def registration(self, key: str | None = None) -> dict[str, Any]:
        """A key's configured behaviours and what each endpoint answers now."""
        state = self.gateway.keys.get(key)
        return {"key": state.label, **state.configured(),
                "now": state.summary(self.gateway.elapsed())}

    def set_registration(self, endpoint: str, behaviour: Any,
                         key: str | None = None) -> dict[str, Any]:
        """Override how one endpoint (or 'default') answers for a key; None clears the override."""
        self.gateway.keys.get(key).set_behaviour(endpoint, behaviour)
        return self.registration(key)

    def set_timeline(self, phases: list[Any], key: str | None = None) -> dict[str, Any]:
        """Replace a key's timeline."""
        self.gateway.keys.get(key).set_timeline(phases)
        return self.registration(key)

    def add_fault(self, spec: dict[str, Any] | FaultSpec) -> dict[str, Any]:
        """Add a fault rule; without start/end/duration it runs from now on."""
        rule = spec if isinstance(spec, FaultSpec) else FaultSpec.model_validate(spec)
        return self.gateway.faults.add(rule, now=self.gateway.elapsed()).describe()

    def faults(self) -> list[dict[str, Any]]:
        """Every fault rule with its state."""
        return self.gateway.faults.describe()

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.gateway.faults.clear()

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the virtual clock forward and bring the world up to it."""
        self.move(seconds)
        return self.clock()

    def move(self, seconds: float) -> int:
        """`advance` without its answer: the new time in ms (a stepped test moves the clock
        90,000 times a simulated day, and reads only that)."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0: the clock only moves forward")
        now = self.gateway.clock.advance(seconds)
        self.gateway.advance_world()
        return now

    def clock(self) -> dict[str, Any]:
        """The virtual clock."""
        gw = self.gateway
        return {"now_ms": gw.clock.now_ms(), "start_ms": gw.start_ms, "elapsed": gw.elapsed(),
                "speed": gw.clock.speed}

    def reset_limits(self) -> None:
        """Forget every weight counter and ban."""
        self.gateway.limiter.reset()

    def state(self) -> dict[str, Any]:
        """What the simulator is running: scenario, keys, registration, faults, limits."""
        gw = self.gateway
        elapsed = gw.elapsed()
        return {
            "scenario": gw.scenario.name,
            "seed": gw.seed,
            "clock": self.clock(),
            "keys": [{"label": k.label, "kind": k.kind} for k in gw.keys.keys],
            "registration": {k.label: k.summary(elapsed) for k in gw.keys.keys},
            "faults": self.faults(),
            "limits": gw.limiter.snapshot(gw.clock.now_ms()),
        }

    # --- HTTP -------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """Mount the /_sim/ routes."""
        r = app.router
        r.add_get("/_sim/requests", _json(self._get_requests))
        r.add_delete("/_sim/requests", _json(lambda _: self.clear_requests()))
        r.add_get("/_sim/registration", _json(lambda q: self.registration(q.query.get("key"))))
        r.add_post("/_sim/registration", _json(self._post_registration))
        r.add_get("/_sim/faults", _json(lambda _: self.faults()))
        r.add_post("/_sim/faults", _json(self._post_fault))
        r.add_delete("/_sim/faults", _json(lambda _: self.clear_faults()))
        r.add_get("/_sim/clock", _json(lambda _: self.clock()))
        r.add_post("/_sim/clock/advance", _json(self._post_advance))
        r.add_delete("/_sim/limits", _json(lambda _: self.reset_limits()))
        r.add_get("/_sim/state", _json(lambda _: self.state()))

    def _get_requests(self, request: Parsed) -> Any:
        q = request.query
        return self.requests(q.get("endpoint"), _int(q.get("since")), _int(q.get("after")))

    def _post_registration(self, request: Parsed) -> Any:
        body = request.body
        if "timeline" in body:
            return self.set_timeline(body["timeline"], body.get("key"))
        if "endpoint" not in body:
            raise ValueError("give 'endpoint' and 'behaviour' (or 'timeline')")
        return self.set_registration(body["endpoint"], body.get("behaviour"), body.get("key"))

    def _post_fault(self, request: Parsed) -> Any:
        return self.add_fault(request.body)

    def _post_advance(self, request: Parsed) -> Any:
        seconds = request.body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
            raise ValueError("give {'seconds': N}")
        return self.advance(float(seconds))


class Parsed:
    """A control request: its query and its JSON body (an object, {} when empty)."""

    def __init__(self, query: dict[str, str], body: dict[str, Any]) -> None:
        self.query = query
        self.body = body


def _int(text: str | None) -> int | None:
    if text is None or text == "":
        return None
    return int(text)


def _json(fn: Callable[[Parsed], Any]) -> Handler:
    """Wrap a control method: JSON in, JSON out, 400 with the reason on bad input."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json() if request.can_read_body else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            result = fn(Parsed(dict(request.query), body))
        except ValidationError as exc:
            return web.json_response({"error": _errors(exc)}, status=400)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc).strip("'\"")}, status=400)
        return web.json_response({"ok": True} if result is None else result)

    return handler


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )
