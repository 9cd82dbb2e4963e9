"""Django REST framework: `permission_classes = [PolicydPermission]` decides each object
a view's `get_object()` (or `check_object_permissions`) hands it, after
`PolicydMiddleware` authenticated the caller and matched the route."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from .django import decide_object
from .errors import AccessRefused
from .gate import WRITING


def api_error(exc: AccessRefused) -> exceptions.APIException:
    """The DRF exception for a refusal (429 keeps its Retry-After through `wait`)."""
    if exc.status == 429:
        return exceptions.Throttled(wait=exc.retry_after)
    if exc.status == 404:  # DRF's own answer for a missing object: a concealed one alike
        return exceptions.NotFound()
    if exc.status == 400:
        return exceptions.ParseError(exc.detail)
    error = exceptions.APIException({"error": exc.code, "decision_id": exc.decision_id})
    error.status_code = exc.status
    return error


class PolicydPermission(permissions.BasePermission):
    """DRF's object permission from policyd: the route's action on the view's object,
    with the body's fields as write fields on PATCH and PUT."""

    def has_permission(self, request, view) -> bool:
        return getattr(request, "policyd", None) is not None  # the middleware ran

    def has_object_permission(self, request, view, obj) -> bool:
        try:
            body = request.data if request.method in WRITING else None
            decide_object(request, obj, dict(body) if body is not None else None)
        except AccessRefused as exc:
            raise api_error(exc) from None
        return True
