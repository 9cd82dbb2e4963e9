from __future__ import annotations

import copy
from pathlib import Path

import pytest

from policyd import Engine
from policyd.engine.ratelimit import Unlimited  # noqa: F401 -- the tests' store of choice

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "policies" / "examples"
NOW = 1795341600.0  # 2026-11-22T10:00:00Z


def user(uid="alice", roles=("viewer",), tenant="t1", mfa=False, **more):
    return {"type": "User", "id": uid,
            "attrs": {"roles": list(roles), "tenant": tenant, "mfa": mfa, **more}}


def order(oid="o1", **attrs):
    base = {"owner": "alice", "tenant": "t1", "status": "paid", "total": 20,
            "card_last4": "4242", "internal_notes": "", "shared_with": []}
    base.update(attrs)
    return {"type": "Order", "id": oid, "attrs": base}


OFFICE = {"ip": "10.1.2.3", "time": "2026-11-22T10:00:00Z"}


def req(principal, action, resource, context=OFFICE, **more):
    r = {"principal": copy.deepcopy(principal), "action": action,
         "resource": copy.deepcopy(resource), "context": dict(context)}
    r.update(more)
    return r


@pytest.fixture(scope="session")
def orders_engine() -> Engine:
    return Engine.from_path(EXAMPLES / "orders", clock=lambda: NOW, rate_store=Unlimited())
