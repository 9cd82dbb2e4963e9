"""A recompile that changes only policy text reuses the loaded entity data (a hot reload
of a policy edit over a million entities takes a second, not half a minute); a change to
a data file, or to a declaration the data is checked against, loads it again."""

from __future__ import annotations

import gc
import shutil
import weakref

from policyd import Engine
from policyd.engine.compiler import compile_path

from .conftest import EXAMPLES


def _request(user, action, repo):
    return {"principal": {"type": "User", "id": user}, "action": action,
            "resource": {"type": "Repository", "id": repo}}


def test_a_policy_edit_reuses_the_data_and_decides_with_the_new_policy(tmp_path):
    root = tmp_path / "repos"
    shutil.copytree(EXAMPLES / "repos", root)
    first = compile_path(root)
    engine = Engine(first)
    assert engine.check(_request("dev", "read", "api")).allowed  # org readers read
    policy = root / "repos.policy"
    policy.write_text(policy.read_text().replace(
        "  org_readers: allow read when principal in resource.owner.readers\n", ""))
    second = compile_path(root)
    assert second.entities is first.entities and second.version != first.version
    engine.swap(second)
    assert not engine.check(_request("dev", "read", "api")).allowed
    assert engine.check(_request("ana", "maintain", "api")).allowed  # through teams still


def test_changed_data_or_declarations_load_again(tmp_path):
    root = tmp_path / "repos"
    shutil.copytree(EXAMPLES / "repos", root)
    first = compile_path(root)
    data = root / "repos.data.jsonl"
    data.write_text(data.read_text().replace('"id": "dev", "parents": [{"type": '
                                             '"OrgPermission", "id": "acme_readers"}]',
                                             '"id": "dev"'))
    second = compile_path(root)
    assert second.entities is not first.entities
    assert not Engine(second).check(_request("dev", "read", "api")).allowed
    schema = root / "schema.policy"
    schema.write_text(schema.read_text().replace("entity OrgPermission\n",
                                                 "entity OrgPermission { note?: string }\n"))
    third = compile_path(root)
    assert third.entities is not second.entities


def test_the_kept_data_lives_only_as_long_as_a_set_that_uses_it(tmp_path):
    root = tmp_path / "repos"
    shutil.copytree(EXAMPLES / "repos", root)
    first = compile_path(root)
    kept = weakref.ref(first.entities)
    del first
    gc.collect()
    assert kept() is None  # the cache held it weakly: 600 MB never outlive their set
