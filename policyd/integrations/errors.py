"""Refusals as HTTP answers: each integration raises one of these and its framework
adapter turns it into the status, headers and body. Bodies carry a code and the
decision id, never rule names or attribute values (those are in the decision log)."""

from __future__ import annotations

import math


class AccessRefused(Exception):
    """A request policyd (or its authentication) refused; `status` is the HTTP answer."""

    status = 403
    code = "forbidden"

    def __init__(self, detail: str = "", decision_id: str = "", reasons=()):
        super().__init__(detail or self.code)
        self.detail, self.decision_id, self.reasons = detail, decision_id, tuple(reasons)

    @property
    def headers(self) -> dict[str, str]:
        return {}

    def body(self) -> dict:
        out = {"error": self.code}
        if self.decision_id:
            out["decision_id"] = self.decision_id
        return out


class Unauthenticated(AccessRefused):
    """No credentials, or credentials that did not verify (RFC 6750's challenge)."""

    status, code = 401, "unauthenticated"

    def __init__(self, detail: str = "", invalid: bool = False):
        super().__init__(detail)
        self.invalid = invalid
        if invalid:
            self.code = "invalid_token"

    @property
    def headers(self) -> dict[str, str]:
        return {"www-authenticate": 'Bearer error="invalid_token"' if self.invalid
                else "Bearer"}


class Forbidden(AccessRefused):
    status, code = 403, "forbidden"


class NotFound(AccessRefused):
    """An undeclared route (a shadow endpoint), or an object that does not exist."""

    status, code = 404, "not_found"


class RateLimited(AccessRefused):
    status, code = 429, "rate_limited"

    def __init__(self, retry_after: float, decision_id: str = "", reasons=()):
        super().__init__("rate limited", decision_id, reasons)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, math.ceil(self.retry_after)))}


class BadRequest(AccessRefused):
    """The request cannot be decided as sent (policyd's RequestError, a malformed body)."""

    status, code = 400, "bad_request"

    def body(self) -> dict:
        return {**super().body(), "detail": self.detail}


class StoredObjectInvalid(AccessRefused):
    """The loaded object does not fit its declared type: the service's own data, not the
    caller's request. 500, and no detail in the body (it would describe fields the
    caller may not see); the detail is in the service's log."""

    status, code = 500, "stored_object_invalid"


class Unavailable(AccessRefused):
    """policyd could not be asked: the request is refused, never let through."""

    status, code = 503, "authorization_unavailable"


def refusal(decision, decision_id: str = "") -> AccessRefused:
    """The refusal a denied decision means: 429 when only a rate rule refused it, 403 when
    a rule denied it as well (the limit counts denied requests too)."""
    if decision.reasons and decision.reasons[0] == "rate_limited":
        return RateLimited(decision.retry_after, decision_id, decision.reasons)
    return Forbidden("", decision_id, decision.reasons)
