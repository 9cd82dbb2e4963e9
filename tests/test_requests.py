"""Request validation (LANGUAGE.md decision step 1): a bad request raises RequestError
naming the attribute and the expected type, and is never decided."""

from __future__ import annotations

import copy

import pytest

from policyd import CheckRequest, Entity, RequestError

from .conftest import OFFICE, order, req, user


def _with(request, path, value):
    r = copy.deepcopy(request)
    node = r
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return r


_DELETE = object()
GOOD = req(user(), "read", order())

BAD = [
    ("undeclared principal type", ("principal", "type"), "Admin", "unknown principal type 'Admin'"),
    ("required attribute missing", ("principal", "attrs", "tenant"), _DELETE,
     "principal.attrs.tenant is required (string)"),
    ("wrong type", ("principal", "attrs", "mfa"), "yes",
     "principal.attrs.mfa: expected a bool, found string 'yes'"),
    ("bool is not a number", ("resource", "attrs", "total"), True,
     "resource.attrs.total: expected a number, found bool True"),
    ("NaN is not a number", ("resource", "attrs", "total"), float("nan"),
     "resource.attrs.total: expected a finite number"),
    ("undeclared attribute", ("resource", "attrs", "is_admin"), True,
     "resource.attrs.is_admin is not declared on resource Order"),
    ("bad ip", ("context", "ip"), "10.1.2.300", "context.ip: expected an ip"),
    ("ip of the wrong kind", ("context", "ip"), 167838211, "context.ip: expected an ip"),
    ("bad time", ("context", "time"), "yesterday", "context.time: expected a time"),
    ("time without offset", ("context", "time"), "2026-11-22T10:00:00",
     "context.time: expected a time"),
    ("undeclared context attribute", ("context", "user"), "x", "context.user is not declared"),
    ("set of the wrong element", ("principal", "attrs", "roles"), ["viewer", 3],
     "principal.attrs.roles[1]: expected a string, found number 3"),
    ("set that is a string", ("principal", "attrs", "roles"), "viewer",
     "principal.attrs.roles: expected a set<string>"),
    ("missing principal", ("principal",), _DELETE, "the request needs `principal`: an object with type, id and attrs"),
    ("missing resource", ("resource",), _DELETE, "the request needs `resource`: an object with type, id and attrs"),
    ("missing action", ("action",), _DELETE, "action: expected the action's name as a string, found nothing"),
    ("action not a string", ("action",), 7, "action: expected the action's name as a string, found number"),
    ("id not a string", ("principal", "id"), 7, "principal.id: expected a string, found number"),
    ("attrs not an object", ("principal", "attrs"), [], "principal.attrs must be an object, found list"),
    ("unknown top-level key", ("admin",), True, "`admin` is not part of a request; it has principal, action, resource, context, write_fields, dry_run (attributes belong under principal.attrs or resource.attrs)"),
    ("unknown entity key", ("principal", "role"), "admin", "principal.role is not part of an entity (type, id, attrs); attributes belong under principal.attrs"),
    ("write_fields not a list", ("write_fields",), "total", "write_fields: expected a list of field names (strings)"),
    ("dry_run not a bool", ("dry_run",), "yes", "dry_run: expected a bool, found string"),
]


@pytest.mark.parametrize("name,path,value,message", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_raise_request_error(orders_engine, name, path, value, message):
    with pytest.raises(RequestError) as exc:
        orders_engine.check(_with(GOOD, path, value))
    assert message in str(exc.value)


@pytest.mark.parametrize("request_", [None, "read", 42, ["principal"], b"{}"])
def test_non_dict_requests_are_refused(orders_engine, request_):
    with pytest.raises(RequestError, match="a request must be an object"):
        orders_engine.check(request_)


def test_validation_never_mutates_the_callers_request(orders_engine):
    request = copy.deepcopy(GOOD)
    request["context"] = {"ip": "10.1.2.3"}
    orders_engine.check(request)
    assert request["context"] == {"ip": "10.1.2.3"}


def test_the_pydantic_model_is_accepted(orders_engine):
    model = CheckRequest(principal=Entity(**user()), action="read",
                         resource=Entity(**order()), context=OFFICE)
    assert orders_engine.check(model).allowed


def test_unknown_resource_still_validates_principal_and_context(orders_engine):
    shadow = {"type": "Ghost", "id": "g"}
    assert orders_engine.check(req(user(), "read", shadow)).reasons == ["unknown_resource"]
    with pytest.raises(RequestError, match="context.ip"):
        orders_engine.check(req(user(), "read", shadow, {"ip": "nope"}))
