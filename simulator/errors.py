"""What a simulated endpoint raises to answer with one of the exchange's errors."""

from __future__ import annotations


class SimError(Exception):
    """An error answer. Negative codes go out as HTTP `http_status` + {"code", "msg"};
    positive (business) codes as HTTP 200 + {"code": "<code>", "message", "data": null, "success": false}."""

    def __init__(self, code: int, msg: str, http_status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status if code < 0 else 200


def missing(name: str) -> SimError:
    """-1102 for a mandatory parameter that was not sent."""
    return SimError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> SimError:
    """-1100 for a malformed parameter."""
    return SimError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9.]+$'.")
