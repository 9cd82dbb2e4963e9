"""The OpenID AuthZEN Authorization API 1.0 over real HTTP (`policyd serve --http-port`,
Starlette on uvicorn), called with httpx: every case of the certification scenario
(openid/authzen, certification/authorization-api-1_0-scenario.md) against its fixture
(tests/authzen), the interop Todo scenario (policies/examples/todo), and bad input."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from .conftest import EXAMPLES
from .servers import ServeProcess, free_port

CERT = Path(__file__).parent / "authzen"
CONFIG = """
[server]
path = "{path}"
http_port = {http_port}
decision_log = "decisions.jsonl"
reload = false

[authzen]
{more}
"""
CERT_TYPES = 'types = { user = "User", record = "Record" }'  # `record` is a keyword


def _serve(tmp: Path, path: Path, more: str = "") -> tuple[ServeProcess, str]:
    port = free_port()
    config = tmp / "policyd.toml"
    config.write_text(CONFIG.format(path=path, http_port=port, more=more))
    server = ServeProcess(path, "--config", str(config), tmp=tmp).wait_serving()
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1)
            return server, url
        except httpx.TransportError:
            if time.monotonic() > end:
                raise TimeoutError(server.log()) from None
            time.sleep(0.05)


@pytest.fixture(scope="module")
def pdp(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authzen")
    server, url = _serve(tmp, CERT, CERT_TYPES)
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client, tmp / "decisions.jsonl"
    server.terminate()


def _post(client, path: str, body, **headers):
    return client.post(path, content=json.dumps(body),
                       headers={"content-type": "application/json", **headers})


ALICE, BOB = {"type": "user", "id": "alice"}, {"type": "user", "id": "bob"}
BOB_ADMIN = {**BOB, "properties": {"role": "admin"}}
R1, R2 = {"type": "record", "id": "record-1"}, {"type": "record", "id": "record-2"}
R2_ARCHIVED = {**R2, "properties": {"status": "archived"}}
READ, WRITE = {"name": "read"}, {"name": "write"}

# C.2.2: (request, decision)
EVALUATIONS = [
    ({"subject": ALICE, "action": READ, "resource": R1}, True),  # C.2.2.1, rule 1
    ({"subject": BOB, "action": WRITE, "resource": R1}, False),  # C.2.2.2, rule 4
    ({"subject": ALICE, "action": READ, "resource": R1,  # C.2.2.3
      "context": {"time": "2025-06-27T18:03-07:00", "ip": "192.168.1.1"}}, True),
    ({"subject": ALICE, "action": WRITE, "resource": R2_ARCHIVED}, False),  # C.2.2.4
    ({"subject": BOB_ADMIN, "action": WRITE, "resource": R2_ARCHIVED}, True),  # C.2.2.5
    ({"subject": ALICE, "action": {"name": "delete", "properties": {"soft": True}},
      "resource": R1}, True),  # C.2.2.6, rule 7
    ({"subject": ALICE, "action": {"name": "delete", "properties": {"soft": False}},
      "resource": R1}, False),  # C.2.2.7, rule 8
    ({"subject": {**ALICE, "properties": {"department": "Sales", "role": "manager"}},
      "action": {"name": "read", "properties": {"method": "GET"}},
      "resource": {**R1, "properties": {"status": "active", "owner": "bob"}}}, True),  # 2.2.8
    ({"subject": ALICE, "action": READ, "resource": R1, "foo": "bar",
      "futureField": {"nested": True}}, True),  # C.2.2.9
    ({"subject": BOB, "action": READ, "resource": R1}, True),  # rule 3
    ({"subject": ALICE, "action": WRITE, "resource": R1}, True),  # rule 2
]


@pytest.mark.parametrize("body, decision", EVALUATIONS)
def test_the_fixture_decisions(pdp, body, decision):
    client, _ = pdp
    resp = _post(client, "/access/v1/evaluation", body)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json() == {"decision": decision}  # exactly: interop runners compare JSON


@pytest.mark.parametrize("body", [
    {"action": READ, "resource": R1}, {"subject": ALICE, "resource": R1},
    {"subject": ALICE, "action": READ},  # C.2.4.1
    {"subject": {"id": "alice"}, "action": READ, "resource": R1},
    {"subject": {"type": "user"}, "action": READ, "resource": R1},
    {"subject": ALICE, "action": {}, "resource": R1},
    {"subject": ALICE, "action": READ, "resource": {"id": "record-1"}},
    {"subject": ALICE, "action": READ, "resource": {"type": "record"}},  # C.2.4.2
    {"subject": "alice", "action": READ, "resource": R1},
    {"subject": ALICE, "action": {"name": 123}, "resource": R1},  # C.2.4.6
    [], "a string",
])
def test_missing_and_mistyped_fields_are_400(pdp, body):
    client, _ = pdp
    resp = _post(client, "/access/v1/evaluation", body)
    assert resp.status_code == 400 and isinstance(resp.json()["error"], str)


@pytest.mark.parametrize("content, ctype", [
    (json.dumps({"subject": ALICE, "action": READ, "resource": R1}), "text/plain"),  # C.2.4.3
    ('{"subject": {"type": "user", "id": "al', "application/json"),  # C.2.4.4 truncated
    ("", "application/json"),  # C.2.4.5
    ("[" * 100_000 + "]" * 100_000, "application/json"),  # deep nesting
    ('{"subject": NaN}', "application/json"),
])
def test_transport_level_errors_are_400(pdp, content, ctype):
    client, _ = pdp
    resp = client.post("/access/v1/evaluation", content=content,
                       headers={"content-type": ctype})
    assert resp.status_code == 400, resp.text


def test_a_body_over_the_limit_is_413(pdp):
    client, _ = pdp
    big = json.dumps({"subject": ALICE, "action": READ, "resource": R1,
                      "pad": "x" * (10 * 1024 * 1024)})
    resp = client.post("/access/v1/evaluation", content=big,
                       headers={"content-type": "application/json"})
    assert resp.status_code == 413


def test_unknown_endpoints_and_methods(pdp):
    client, _ = pdp
    assert client.post("/access/v2/evaluation", content="{}").status_code == 404
    assert client.get("/access/v1/evaluation").status_code == 405


def test_x_request_id_is_echoed_and_decisions_are_idempotent(pdp):
    client, log = pdp
    body = {"subject": ALICE, "action": READ, "resource": R1}
    resp = _post(client, "/access/v1/evaluation", body, **{"x-request-id": "req-42"})
    assert resp.headers["x-request-id"] == "req-42"  # C.2.5.1
    assert "x-request-id" not in _post(client, "/access/v1/evaluation", body).headers
    assert {_post(client, "/access/v1/evaluation", body).json()["decision"]
            for _ in range(5)} == {True}  # C.2.6
    time.sleep(0.3)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert any(r["request_id"] == "req-42" and r["allowed"] for r in records)


# C.3: (request, decisions)
BATCHES = [
    ({"subject": ALICE, "action": READ, "evaluations": [{"resource": R1}, {"resource": R2}]},
     [True, None]),  # C.3.2.1
    ({"subject": BOB, "resource": R1, "evaluations": [{"action": READ}, {"action": WRITE}]},
     [True, False]),  # C.3.2.2
    ({"subject": ALICE, "action": WRITE, "evaluations": [
        {"resource": {**R1, "properties": {"status": "active"}}},
        {"resource": R2_ARCHIVED}]}, [True, False]),  # C.3.2.3
    ({"action": WRITE, "resource": R2_ARCHIVED,
      "evaluations": [{"subject": ALICE}, {"subject": BOB_ADMIN}]}, [False, True]),  # 3.2.4
    ({"evaluations": [{"subject": ALICE, "action": READ, "resource": R1},
                      {"subject": BOB, "action": WRITE, "resource": R1}]}, [True, False]),
    ({"subject": ALICE, "action": READ, "context": {"time": "2025-06-27T18:03-07:00"},
      "evaluations": [{"resource": R1}, {"resource": R2, "context": {
          "time": "2025-06-27T19:00-07:00", "source": "batch-override"}}]},
     [None, None]),  # C.3.2.6
    ({"subject": ALICE, "action": WRITE, "resource": {**R1, "properties": {"status": "active"}},
      "evaluations": [{}, {"resource": R2_ARCHIVED}]}, [True, False]),  # C.3.2.7
    ({"subject": ALICE, "action": READ, "options": {"evaluations_semantic": "execute_all"},
      "evaluations": [{"resource": R1}, {}]}, [True, False]),  # C.3.4.1
]


@pytest.mark.parametrize("body, decisions", BATCHES)
def test_batches(pdp, body, decisions):
    client, _ = pdp
    resp = _post(client, "/access/v1/evaluations", body)
    assert resp.status_code == 200
    got = resp.json()["evaluations"]
    assert len(got) == len(decisions) and all(isinstance(g["decision"], bool) for g in got)
    assert [g["decision"] for g, d in zip(got, decisions, strict=True) if d is not None] == \
        [d for d in decisions if d is not None]


def test_a_failed_item_says_why_and_the_others_stand(pdp):
    client, _ = pdp
    got = _post(client, "/access/v1/evaluations", BATCHES[-1][0]).json()["evaluations"]
    assert got[1]["context"]["error"]["status"] == 400
    assert "resource" in got[1]["context"]["error"]["message"]


@pytest.mark.parametrize("evaluations", [None, []])  # C.3.4.2, C.3.4.3
def test_without_evaluations_it_is_one_evaluation(pdp, evaluations):
    client, _ = pdp
    body = {"subject": ALICE, "action": READ, "resource": R1}
    if evaluations is not None:
        body["evaluations"] = evaluations
    assert _post(client, "/access/v1/evaluations", body).json() == {"decision": True}


def test_short_circuit_semantics(pdp):
    client, _ = pdp
    items = [{"action": READ}, {"action": WRITE}, {"action": READ}]
    body = {"subject": BOB, "resource": R1, "evaluations": items}
    first_deny = _post(client, "/access/v1/evaluations", {
        **body, "options": {"evaluations_semantic": "deny_on_first_deny"}}).json()
    assert [e["decision"] for e in first_deny["evaluations"]] == [True, False]
    first_permit = _post(client, "/access/v1/evaluations", {
        **body, "options": {"evaluations_semantic": "permit_on_first_permit"}}).json()
    assert [e["decision"] for e in first_permit["evaluations"]] == [True]
    bad = _post(client, "/access/v1/evaluations", {
        **body, "options": {"evaluations_semantic": "first_come"}})
    assert bad.status_code == 400


def test_a_batch_over_the_bound_is_400(pdp):
    client, _ = pdp
    body = {"subject": ALICE, "action": READ, "evaluations": [{"resource": R1}] * 1001}
    assert _post(client, "/access/v1/evaluations", body).status_code == 400


# ---- search (C.4) --------------------------------------------------------------------


def _ids(resp) -> list[str]:
    assert resp.status_code == 200, resp.text
    return [r.get("id", r.get("name")) for r in resp.json()["results"]]


def test_subject_search(pdp):
    client, _ = pdp
    base = {"subject": {"type": "user"}, "action": READ, "resource": R1}
    assert {"alice", "bob"} <= set(_ids(_post(client, "/access/v1/search/subject", base)))
    with_ctx = _post(client, "/access/v1/search/subject", {**base, "context": {"ip": "1.2.3.4"}})
    with_id = _post(client, "/access/v1/search/subject", {**base, "subject": ALICE})
    assert _ids(with_ctx) == _ids(with_id) == ["alice", "bob"]  # C.4.2.2, C.4.2.3
    s4 = _post(client, "/access/v1/search/subject", {**base, "action": WRITE,
                                                     "resource": R2_ARCHIVED})
    assert _ids(s4) == ["bob"] and s4.json()["results"][0]["type"] == "user"  # C.4.2.4


def test_resource_search(pdp):
    client, _ = pdp
    base = {"subject": ALICE, "action": READ, "resource": {"type": "record"}}
    assert _ids(_post(client, "/access/v1/search/resource", base)) == ["record-1", "record-2"]
    assert _ids(_post(client, "/access/v1/search/resource", {**base, "resource": R1})) == \
        ["record-1", "record-2"]  # the id is ignored (C.4.3.3)
    s5 = _post(client, "/access/v1/search/resource", {**base, "subject": BOB_ADMIN,
                                                      "action": WRITE})
    assert _ids(s5) == ["record-2"]


def test_action_search(pdp):
    client, _ = pdp
    assert _ids(_post(client, "/access/v1/search/action",
                      {"subject": ALICE, "resource": R1})) == ["read", "write"]  # C.4.4.1
    assert _ids(_post(client, "/access/v1/search/action",
                      {"subject": BOB_ADMIN, "resource": R2_ARCHIVED})) == ["read", "write"]


def test_pages_follow_tokens_that_cannot_be_forged_or_reused(pdp):
    client, _ = pdp
    body = {"subject": {"type": "user"}, "action": READ, "resource": R1, "page": {"limit": 1}}
    first = _post(client, "/access/v1/search/subject", body).json()
    assert first["page"]["count"] == 1 and first["page"]["total"] == 2
    token = first["page"]["next_token"]
    second = _post(client, "/access/v1/search/subject",
                   {**body, "page": {"limit": 1, "token": token}}).json()
    assert [r["id"] for r in first["results"] + second["results"]] == ["alice", "bob"]
    assert second["page"]["next_token"] == ""
    i = len(token) - 6  # a character inside the MAC: all six of its bits are used
    forged = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
    assert _post(client, "/access/v1/search/subject",
                 {**body, "page": {"limit": 1, "token": forged}}).status_code == 400
    changed = _post(client, "/access/v1/search/subject",
                    {**body, "action": WRITE, "page": {"limit": 1, "token": token}})
    assert changed.status_code == 400 and "another request" in changed.json()["error"]


def test_a_type_without_entity_data_has_no_results_and_says_so(pdp):
    client, _ = pdp
    resp = _post(client, "/access/v1/search/subject",
                 {"subject": {"type": "spaceship"}, "action": READ, "resource": R1})
    assert resp.status_code == 200 and resp.json()["results"] == []  # C.4.6
    assert "spaceship" in resp.json()["context"]["note"]


@pytest.mark.parametrize("path, body", [
    ("subject", {"subject": {"type": "user"}, "resource": R1}),
    ("resource", {"action": READ, "resource": {"type": "record"}}),
    ("action", {"subject": ALICE}),  # C.4.7.1
    ("subject", {"subject": {"type": "user"}, "action": READ, "resource": {"type": "record"}}),
    ("resource", {"subject": {"type": "user"}, "action": READ, "resource": {"type": "record"}}),
    ("action", {"subject": {"type": "user"}, "resource": R1}),  # C.4.7.2
])
def test_search_inputs_must_be_whole(pdp, path, body):
    client, _ = pdp
    assert _post(client, f"/access/v1/search/{path}", body).status_code == 400


def test_the_metadata_document(pdp):
    client, _ = pdp
    resp = client.get("/.well-known/authzen-configuration")
    doc = resp.json()
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    base = str(client.base_url).rstrip("/")
    assert doc["policy_decision_point"] == base
    assert doc["access_evaluation_endpoint"] == base + "/access/v1/evaluation"
    assert doc["search_action_endpoint"] == base + "/access/v1/search/action"


def test_keep_alive_and_concurrent_requests(pdp):
    client, _ = pdp
    body = {"subject": ALICE, "action": READ, "resource": R1}
    url = str(client.base_url)
    answers, errors = [], []

    def worker():
        try:
            with httpx.Client(base_url=url, timeout=10) as c:  # one connection, reused
                for _ in range(30):
                    answers.append(_post(c, "/access/v1/evaluation", body).json()["decision"])
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and answers == [True] * 240


# ---- the interop Todo scenario, and PEP authentication -------------------------------

RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
MORTY = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
SUMMER = "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
JERRY = "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
TODO = [  # (subject, action, resource properties, decision)
    (BETH, "can_read_user", None, True), (JERRY, "can_read_todos", {}, True),
    (RICK, "can_create_todo", {}, True), (MORTY, "can_create_todo", {}, True),
    (SUMMER, "can_create_todo", {}, True), (BETH, "can_create_todo", {}, False),
    (JERRY, "can_create_todo", {}, False),
    (MORTY, "can_update_todo", {"ownerID": "rick@the-citadel.com"}, False),
    (MORTY, "can_update_todo", {"ownerID": "morty@the-citadel.com"}, True),
    (RICK, "can_update_todo", {"ownerID": "morty@the-citadel.com"}, True),
    (SUMMER, "can_delete_todo", {"ownerID": "morty@the-citadel.com"}, False),
    (SUMMER, "can_delete_todo", {"ownerID": "summer@the-smiths.com"}, True),
    (RICK, "can_delete_todo", {"ownerID": "summer@the-smiths.com"}, True),
    (BETH, "can_delete_todo", {"ownerID": "beth@the-smiths.com"}, False),
]


def test_the_todo_interop_scenario_behind_a_pep_token(tmp_path):
    tokens = tmp_path / "pep-tokens.txt"
    tokens.write_text("# the todo backend\nsecret-pep-token\n")
    server, url = _serve(tmp_path, EXAMPLES / "todo",
                         f'pep_tokens = "{tokens}"\nresponse_context = true')
    auth = {"authorization": "Bearer secret-pep-token"}
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            for subject, action, props, decision in TODO:
                resource = {"type": "user", "id": "rick@the-citadel.com"} if props is None \
                    else {"type": "todo", "id": "7240d0db", "properties": props}
                body = {"subject": {"type": "user", "id": subject}, "action": {"name": action},
                        "resource": resource, "context": {}}
                resp = _post(client, "/access/v1/evaluation", body, **auth)
                assert resp.json()["decision"] is decision, (subject, action, props)
                assert resp.json()["context"]["decision_id"]
            batch = _post(client, "/access/v1/evaluations", {
                "subject": {"type": "user", "id": MORTY}, "action": {"name": "can_update_todo"},
                "evaluations": [{"resource": {"type": "todo", "id": "a", "properties": {
                    "ownerID": "rick@the-citadel.com"}}}, {"resource": {
                        "type": "todo", "id": "b", "properties": {
                            "ownerID": "morty@the-citadel.com"}}}]}, **auth)
            assert [e["decision"] for e in batch.json()["evaluations"]] == [False, True]
            body = {"subject": {"type": "user", "id": BETH}, "action": {"name": "can_read_user"},
                    "resource": {"type": "user", "id": "x"}}
            missing = _post(client, "/access/v1/evaluation", body)
            wrong = _post(client, "/access/v1/evaluation", body, authorization="Bearer nope")
            assert missing.status_code == wrong.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            # a declared property of the wrong type names the attribute
            bad = _post(client, "/access/v1/evaluation", {
                "subject": {"type": "user", "id": MORTY}, "action": {"name": "can_update_todo"},
                "resource": {"type": "todo", "id": "a", "properties": {"ownerID": 7}}}, **auth)
            assert bad.status_code == 400 and "ownerID" in bad.json()["error"]
            # stored attributes come from the directory, never from the caller
            forged = _post(client, "/access/v1/evaluation", {
                "subject": {"type": "user", "id": BETH, "properties": {"roles": ["admin"]}},
                "action": {"name": "can_create_todo"}, "resource": {"type": "todo", "id": "n"}},
                **auth)
            assert forged.json()["decision"] is False
            unmapped = _post(client, "/access/v1/evaluation", {
                "subject": {"type": "User", "id": BETH}, "action": {"name": "can_read_user"},
                "resource": {"type": "user", "id": "x"}}, **auth)
            assert unmapped.json()["decision"] is False  # no case folding
    finally:
        server.terminate()


def test_every_page_token_it_issues_is_accepted_whatever_bytes_its_mac_holds():
    """A MAC byte that is "." once made about one token in sixteen unreadable."""
    from policyd import Engine, compile_text
    from policyd.server.authzen import AuthZen

    service = AuthZen(Engine(compile_text("principal U { }\nresource D { actions read }")))
    for n in range(400):
        digest, after = f"{n:032x}", f"id-{n}"
        assert service._cursor(service._token(after, n, digest), digest) == (after, n)


SURROGATES = """
principal User { roles: set<string>  tags?: map<string, string> }
role viewer
resource Doc { actions read }
policy docs for Doc { allow read when principal is viewer  show * }
"""


def test_one_item_with_a_lone_surrogate_is_decided_false_not_the_batch_a_500(tmp_path):
    """Issue 28, item 10: a map key `\\ud800` in one item made the whole batch a 500 (the
    item's error message quoted it, and the response could not be encoded)."""
    (tmp_path / "docs.policy").write_text(SURROGATES)
    server, url = _serve(tmp_path, tmp_path / "docs.policy")
    viewer = {"type": "User", "id": "u", "properties": {"roles": ["viewer"]}}
    item = {"subject": viewer, "action": READ, "resource": {"type": "Doc", "id": "d"}}
    odd = {**item, "subject": {**viewer, "properties": {"roles": ["viewer"],
                                                        "tags": {"\ud800": 1}}}}
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            r = _post(client, "/access/v1/evaluations", {"evaluations": [item, odd, item]})
            assert r.status_code == 200, r.text
            answers = r.json()["evaluations"]
            assert [a["decision"] for a in answers] == [True, False, True]
            assert answers[1]["context"]["error"]["status"] == 400
            assert "\\ud800" in answers[1]["context"]["error"]["message"]
            single = _post(client, "/access/v1/evaluation", odd)
            assert single.status_code == 400 and "\\ud800" in single.json()["error"]
    finally:
        server.terminate()
