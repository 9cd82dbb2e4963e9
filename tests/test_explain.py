"""Full explanations: every rule of the action, held or not, the first false part of a
condition with the values it compared (sensitive ones masked), in process and served."""

from __future__ import annotations

import pytest

from policyd import Engine, RequestError, compile_text
from policyd.client import DecisionClient

from .conftest import EXAMPLES, order, req, user
from .servers import thread_server

POLICY = """
record Badge { level: number  code: string sensitive }
principal User { roles: set<string>  secret: string sensitive  badge: Badge }
role staff
resource Vault { floor: number  actions open }
policy vaults for Vault {
  by_code: allow open when principal.secret == "sesame" or principal.badge.code == "x"
  by_level: allow open when principal is staff and principal.badge.level >= resource.floor
  show *
}
"""


def _engine() -> Engine:
    return Engine(compile_text(POLICY))


def _request(secret="nope", level=1, roles=("staff",)):
    return {"principal": {"type": "User", "id": "u", "attrs": {
                "roles": list(roles), "secret": secret, "badge": {"level": level,
                                                                   "code": "y"}}},
            "action": "open", "resource": {"type": "Vault", "id": "v", "attrs": {"floor": 3}}}


def test_a_rule_that_did_not_hold_says_which_part_was_false_and_masks_secrets():
    e = _engine().explain(_request())
    assert e["decision"]["allowed"] is False
    by_code, by_level, show = e["rules"]
    assert show == {"rule": "vaults#3", "effect": "show", "fields": ["id", "floor"],
                    "held": True, "condition": "always"}
    assert by_code["held"] is False and by_code["because"]["none_held"] == [
        {"condition": 'principal.secret == "sesame"', "values": {"principal.secret": "***"}},
        {"condition": 'principal.badge.code == "x"', "values": {"principal.badge.code": "***"}}]
    assert by_level["because"] == {"condition": "principal.badge.level >= resource.floor",
                                   "values": {"principal.badge.level": 1,
                                              "resource.floor": 3}}
    assert "sesame" not in str(e["rules"][0]["because"]["none_held"][0]["values"])


def test_the_first_false_part_of_an_and_is_named():
    e = _engine().explain(_request(roles=()))
    assert e["rules"][1]["because"] == {"condition": "principal is staff",
                                        "values": {"principal.roles": []}}
    allowed = _engine().explain(_request(level=5))
    assert allowed["decision"]["allowed"] and allowed["rules"][1]["held"] is True


def test_a_bad_request_is_refused_like_check():
    with pytest.raises(RequestError, match="principal.attrs.badge"):
        _engine().explain({**_request(), "principal": {"type": "User", "id": "u",
                                                        "attrs": {"roles": [], "secret": ""}}})


def test_explanations_over_grpc_equal_the_engines():
    engine = Engine.from_path(EXAMPLES / "orders")
    request = req(user("dave", roles=[]), "update", order())
    with thread_server(EXAMPLES / "orders", reload=False) as (target, _), \
            DecisionClient(target, timeout=5) as client:
        remote = client.explain(request)
    local = engine.explain(request)
    assert remote["rules"] == local["rules"] and remote["decision"]["allowed"] is False
