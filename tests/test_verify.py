"""`policyd verify` (issue 25, first part): planted bugs of the kind tests miss are found,
with counterexamples the engines confirm; refactors are proved equivalent; what the model
does not cover yet is `unknown`, never a proof."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from policyd import Engine, compile_text
from policyd.engine.runtime import ip_in
from policyd.values import parse_ip

z3 = pytest.importorskip("z3")

from policyd.verify.analysis import (  # noqa: E402
    equivalent,
    no_new_access,
    rule_findings,
)
from policyd.verify.terms import Unsupported  # noqa: E402

BASE = """
principal User { roles: set<string>  tenant: string  level: number  team?: string }
role viewer
role admin extends viewer
role superadmin extends admin
resource Order {
  tenant: string
  total: number
  status: string
  tags: set<string>
  note?: string
  actions read, refund, archive
}
policy orders for Order {
  fence: deny * when principal.tenant != resource.tenant and not (principal is superadmin)
  readers: allow read when principal is viewer
  refunds: allow refund when principal is admin and resource.total < 500
  archivers: allow archive when principal.level >= 10 and resource.status == "closed"
  show id, total, status, tags
  show note when principal is admin
  write note when principal is admin
}
"""


def _set(text=BASE):
    return compile_text(text, "orders.policy")


def _changed(old: str, new: str):
    assert old in BASE, old
    return _set(BASE.replace(old, new))


def _confirm(found, old_allowed, new_allowed):
    """The counterexample is a request both engines decide as reported."""
    request = found["request"]
    assert Engine(_set()).check(request).allowed is old_allowed
    assert found["old"]["allowed"] is old_allowed and found["new"]["allowed"] is new_allowed
    return request


def test_a_limit_turned_inclusive_is_found_at_the_limit():
    new = _changed("resource.total < 500", "resource.total <= 500")
    found = equivalent(_set(), new)
    request = _confirm(found, False, True)
    assert request["action"] == "refund" and request["resource"]["attrs"]["total"] == 500
    assert Engine(new).check(request).allowed
    assert no_new_access(_set(), new) is not None
    assert no_new_access(new, _set()) is None  # the old limit is a tightening of the new


def test_a_role_read_as_a_plain_string_loses_inheritance():
    new = _changed("allow refund when principal is admin",
                   'allow refund when principal.roles contains "admin"')
    found = equivalent(_set(), new)
    request = _confirm(found, True, False)
    roles = request["principal"]["attrs"]["roles"]
    assert "superadmin" in roles and "admin" not in roles  # inherited, not listed


def test_a_tenant_fence_that_exempts_a_status_is_new_access():
    new = _changed("principal.tenant != resource.tenant and",
                   'principal.tenant != resource.tenant and resource.status != "draft" and')
    found = no_new_access(_set(), new)
    request = _confirm(found, False, True)
    attrs = request["resource"]["attrs"]
    assert attrs["status"] == "draft" and attrs["tenant"] != \
        request["principal"]["attrs"]["tenant"]


def test_a_field_shown_more_widely_is_a_difference_in_visible_fields():
    new = _changed("show note when principal is admin", "show note when principal is viewer")
    found = equivalent(_set(), new)
    assert found["old"]["allowed"] and found["new"]["allowed"]
    assert "note" in found["new"]["visible_fields"]
    assert "note" not in found["old"]["visible_fields"]


def test_a_write_granted_more_widely_is_found_with_the_field_written():
    new = _changed("write note when principal is admin", "write note when principal is viewer")
    found = equivalent(_set(), new)
    assert found["request"]["write_fields"] == ["note"]
    assert found["old"]["allowed"] is False and found["new"]["allowed"] is True


def test_a_refactor_is_proved_equivalent():
    new = _changed("principal.level >= 10 and resource.status == \"closed\"",
                   "not (principal.level < 10 or resource.status != \"closed\")")
    assert equivalent(_set(), new) is None
    assert no_new_access(_set(), new) is None and no_new_access(new, _set()) is None


def test_dead_and_shadowed_rules():
    text = BASE.replace(
        "  show id, total, status, tags\n",
        "  never: allow read when resource.total > 10 and resource.total < 5\n"
        "  frozen: deny archive when resource.status == \"closed\"\n"
        "  show id, total, status, tags\n")
    found = rule_findings(_set(text))
    assert found.dead == ["orders.never"]
    assert found.shadowed == ["orders.archivers"]  # it needs closed, and closed is denied
    assert found.unknown == {}


def test_a_glob_that_lost_its_slash_is_found():
    old = _changed('resource.status == "closed"', 'resource.status like "/public/*"')
    new = _changed('resource.status == "closed"', 'resource.status like "/public*"')
    found = no_new_access(old, new)
    status = found["request"]["resource"]["attrs"]["status"]
    assert status.startswith("/public") and not status.startswith("/public/")
    assert not Engine(old).check(found["request"]).allowed
    assert Engine(new).check(found["request"]).allowed
    assert no_new_access(new, old) is None  # "/public/*" is inside "/public*"


def test_a_length_bound_off_by_one_is_found():
    old = _changed('resource.status == "closed"', "len(resource.status) < 8")
    new = _changed('resource.status == "closed"', "len(resource.status) <= 8")
    found = equivalent(old, new)
    assert len(found["request"]["resource"]["attrs"]["status"]) == 8
    assert equivalent(old, old) is None


def test_a_construct_not_modelled_is_unknown_naming_it():
    text = BASE.replace("resource.status == \"closed\"", 'lower(resource.status) == "x"')
    with pytest.raises(Unsupported, match="lower"):
        equivalent(_set(text), _set(text))
    found = rule_findings(_set(text))
    assert "lower" in found.unknown["orders.archivers"] and "orders.archivers" not in found.dead


def test_the_cli_exit_codes_and_json(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "s.policy").write_text(BASE)
    (new / "s.policy").write_text(BASE.replace("resource.total < 500", "resource.total <= 500"))

    def run(*args):
        return subprocess.run([sys.executable, "-m", "policyd", "verify", *args],
                              capture_output=True, text=True, timeout=120)

    same = run("--equivalent", str(old), str(old), "--format", "json")
    assert same.returncode == 0 and json.loads(same.stdout)["equivalent"] is True
    differs = run("--no-new-access", str(old), str(new), "--format", "json")
    answer = json.loads(differs.stdout)
    assert differs.returncode == 1 and answer["holds"] is False
    assert Engine(_set()).check(answer["counterexample"]["request"]).allowed is False
    rules = run(str(old))
    assert rules.returncode == 0 and "0 dead, 0 shadowed, 0 not decided" in rules.stdout


def test_importing_policyd_never_imports_the_solver():
    code = "import sys, policyd, policyd.cli; assert 'z3' not in sys.modules, 'z3'"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_arithmetic_is_exact_doubles_and_an_overflowing_deny_still_denies():
    """`total * 10 < 0` and `total < 0` differ only where the product overflows: there
    the engine's deny is unknown, so it denies (reason `error`); the solver finds it."""
    old = _changed("  readers: allow read", "  neg: deny read when resource.total * 10 < 0\n"
                   "  readers: allow read")
    new = _changed("  readers: allow read", "  neg: deny read when resource.total < 0\n"
                   "  readers: allow read")
    found = no_new_access(old, new)
    total = found["request"]["resource"]["attrs"]["total"]
    assert abs(total * 10) == float("inf")
    assert Engine(old).check(found["request"]).reasons == ["error"]
    assert Engine(new).check(found["request"]).allowed
    assert no_new_access(new, old) is None


def test_an_allow_whose_arithmetic_overflows_grants_nothing():
    old = _changed("principal.level >= 10 and", "principal.level * 2 >= 20 and")
    new = _changed("principal.level >= 10 and", "principal.level >= 10 and")
    found = equivalent(old, new)
    level = found["request"]["principal"]["attrs"]["level"]
    assert abs(level * 2) == float("inf")  # level >= 10, but the product is no number
    assert not Engine(old).check(found["request"]).allowed
    assert Engine(new).check(found["request"]).allowed


NET = """
principal User { roles: set<string> }
role staff
context { ip: ip }
resource Doc { actions read }
policy docs for Doc {
  office: deny read when not (context.ip in [ip("10.0.0.0/8"), ip("2001:db8::/32")])
  staff: allow read when principal is staff
}
"""


def test_a_network_range_widened_by_one_bit_is_found():
    old = compile_text(NET, "net.policy")
    new = compile_text(NET.replace("10.0.0.0/8", "10.0.0.0/7"), "net.policy")
    found = no_new_access(old, new)
    ip = parse_ip(found["request"]["context"]["ip"])  # an address or a range: both valid
    assert ip_in(ip, parse_ip("10.0.0.0/7")) and not ip_in(ip, parse_ip("10.0.0.0/8"))
    assert not Engine(old).check(found["request"]).allowed
    assert Engine(new).check(found["request"]).allowed
    assert no_new_access(new, old) is None


def test_ipv6_ranges_and_ipv4_mapped_addresses_are_as_the_engine_reads_them():
    old = compile_text(NET, "net.policy")
    new = compile_text(NET.replace("2001:db8::/32", "2001:db8::/31"), "net.policy")
    found = no_new_access(old, new)
    ip = parse_ip(found["request"]["context"]["ip"])
    assert ip_in(ip, parse_ip("2001:db8::/31")) and not ip_in(ip, parse_ip("2001:db8::/32"))
    # ::ffff:10.1.2.3 is 10.1.2.3: a fence on ::ffff:0:0/96 is one on every IPv4 address
    mapped = compile_text(NET.replace('ip("2001:db8::/32")', 'ip("::ffff:0:0/96")'),
                          "net.policy")
    every_v4 = compile_text(NET.replace('ip("10.0.0.0/8"), ip("2001:db8::/32")',
                                        'ip("0.0.0.0/0")'), "net.policy")
    assert equivalent(mapped, every_v4) is None


STORED = """
principal User { name: string  roles: set<string> stored  dept: string stored }
role viewer
role editor extends viewer
resource Doc { dept: string  actions read }
policy docs for Doc {
  same_dept: allow read when principal is viewer and principal.dept == resource.dept
}
"""


def test_stored_attributes_are_any_entity_data_and_come_back_as_data(tmp_path):
    """Without `with data` a property speaks of every possible entity data: the
    counterexample brings the entity it needs (new to the set's own data), and the
    engines confirm it with that entity laid over their data."""
    def write(name, text):
        root = tmp_path / name
        root.mkdir()
        (root / "s.policy").write_text(text)
        (root / "users.data.json").write_text(json.dumps([
            {"kind": "principal", "type": "User", "id": "alice",
             "attrs": {"roles": ["editor"], "dept": "eng"}}]))
        return root

    old = write("old", STORED)
    new = write("new", STORED.replace("principal is viewer and principal.dept == "
                                      "resource.dept", "principal is viewer and (principal"
                                      ".dept == resource.dept or principal is editor)"))
    out = subprocess.run([sys.executable, "-m", "policyd", "verify", "--no-new-access",
                          str(old), str(new), "--format", "json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    found = json.loads(out.stdout)["counterexample"]
    [entry] = found["data"]
    assert entry["type"] == "User" and entry["id"] == found["request"]["principal"]["id"]
    assert entry["id"] != "alice" and "editor" in entry["attrs"]["roles"]
    assert entry["attrs"]["dept"] != found["request"]["resource"]["attrs"]["dept"]
    assert "roles" not in found["request"]["principal"]["attrs"]  # data, never the request
    assert found["old"]["allowed"] is False and found["new"]["allowed"] is True


NESTED = """
record Project { workspace: string  private: bool  members: set<string>  lead?: string }
principal User { ws_roles: map<string, set<string>>  limits: map<string, number> }
role guest
role admin extends guest
resource Issue { project: Project  actions read, close }
policy issues for Issue {
  open: allow read when not resource.project.private
  members: allow read when principal.id in resource.project.members
  ws: allow read when principal.ws_roles[resource.project.workspace] is admin
  lead: allow close when resource.project has lead and resource.project.lead == principal.id
  quota: allow close when "close" in principal.limits and principal.limits["close"] > 3
}
"""


def test_records_and_maps_read_as_the_engine_reads_them():
    old = compile_text(NESTED, "issues.policy")
    new = compile_text(NESTED.replace("] is admin", "] is guest"), "issues.policy")
    found = no_new_access(old, new)
    request = found["request"]
    project = request["resource"]["attrs"]["project"]
    assert project["private"] is True and request["principal"]["id"] not in project["members"]
    assert request["principal"]["attrs"]["ws_roles"] == {project["workspace"]: ["guest"]}
    assert no_new_access(new, old) is None
    # an optional record field and a guarded map value: `>` turned `>=` is found at 3
    widened = compile_text(NESTED.replace('["close"] > 3', '["close"] >= 3'), "issues.policy")
    found = equivalent(old, widened)
    assert found["request"]["principal"]["attrs"]["limits"]["close"] == 3
    assert rule_findings(old).unknown == {} and rule_findings(old).dead == []


def test_diff_prove_reports_the_counterexample_as_a_change(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "s.policy").write_text(BASE)
    (new / "s.policy").write_text(BASE.replace("resource.total < 500", "resource.total <= 500"))

    def diff(*args):
        return subprocess.run([sys.executable, "-m", "policyd", "diff", *args],
                              capture_output=True, text=True, timeout=120)

    changed = diff(str(old), str(new), "--prove")
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert "denied by default_deny\n   ->  allowed by orders.refunds" in changed.stdout
    assert "proof (policyd verify --equivalent)" in changed.stdout
    same = diff(str(old), str(old), "--prove", "--format", "json")
    assert same.returncode == 0 and json.loads(same.stdout)["proved"] is True
    assert diff(str(old), str(new)).returncode == 2  # neither requests nor --prove


def test_a_set_that_does_not_compile_is_an_error_not_a_counterexample(tmp_path):
    (tmp_path / "s.policy").write_text("principal User {\n")
    out = subprocess.run([sys.executable, "-m", "policyd", "verify", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "error[E004]" in out.stdout + out.stderr
