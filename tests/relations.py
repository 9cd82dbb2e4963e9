"""The two relationship models of LANGUAGE.md 1.2 (a drive; a code host) in policyd and in
Cedar, and random entity hierarchies generated the way Cedar's published benchmark
generators make them (cedar-policy/cedar-examples, oopsla2024-benchmarks/generators:
gdrive_entity_generator.py and github_entity_generator.py), seeded. Shared by the
differential test (tests/test_relations_cedar.py) and bench/relations_bench.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

DRIVE = """
entity Group
entity View in View
resource Folder in Folder, View stored { actions create_document }
resource Document in Folder, View stored {
  public: bool
  actions read, write, share, change_owner
}
principal User in Group stored {
  view_access: View
  owned_documents: set<Document>
  owned_folders: set<Folder>
}
policy docs for Document {
  allow read when resource in principal.view_access
  allow read when resource.public
  allow read, write, share when resource in principal.owned_documents
                              or resource in principal.owned_folders
  allow change_owner when principal.owned_documents contains resource
}
policy folders for Folder {
  allow create_document when principal.owned_folders contains resource
}
"""

# Cedar's gdrive benchmark policies (oopsla2024-benchmarks/benches/gdrive/cedar), with
# policyd's attribute names
DRIVE_CEDAR = """
permit (principal, action == Action::"read", resource)
when { resource in principal.view_access };
permit (principal, action == Action::"read", resource)
when { resource.public };
permit (principal, action in [Action::"read", Action::"write", Action::"share"], resource)
when { resource in principal.owned_documents || resource in principal.owned_folders };
permit (principal, action == Action::"change_owner", resource)
when { principal.owned_documents.contains(resource) };
permit (principal, action == Action::"create_document", resource)
when { principal.owned_folders.contains(resource) };
"""

REPOS = """
entity OrgPermission
entity RepoPermission
entity Team in Team, RepoPermission
entity Organization in OrgPermission {
  readers: OrgPermission
  writers: OrgPermission
  admins: OrgPermission
}
principal User in Organization, Team, OrgPermission, RepoPermission stored {}
resource Repository stored {
  owner: Organization
  readers: RepoPermission
  triagers: RepoPermission
  writers: RepoPermission
  maintainers: RepoPermission
  admins: RepoPermission
  actions read, triage, write, maintain, admin
}
policy repos for Repository {
  allow read when principal in resource.readers
  allow read, triage when principal in resource.triagers
  allow read, triage, write when principal in resource.writers
  allow read, triage, write, maintain when principal in resource.maintainers
  allow * when principal in resource.admins
  allow read when principal in resource.owner.readers
  allow read, triage, write when principal in resource.owner.writers
  allow * when principal in resource.owner.admins
}
"""

# Cedar's github benchmark policies (benches/github/cedar), with its action hierarchy
# (read in triage in write in maintain in admin) as entities
REPOS_CEDAR = """
permit (principal, action == Action::"read", resource) when { principal in resource.readers };
permit (principal, action in Action::"triage", resource) when { principal in resource.triagers };
permit (principal, action in Action::"write", resource) when { principal in resource.writers };
permit (principal, action in Action::"maintain", resource)
when { principal in resource.maintainers };
permit (principal, action in Action::"admin", resource) when { principal in resource.admins };
permit (principal, action == Action::"read", resource)
when { principal in resource.owner.readers };
permit (principal, action in Action::"write", resource)
when { principal in resource.owner.writers };
permit (principal, action in Action::"admin", resource)
when { principal in resource.owner.admins };
"""
REPO_ACTIONS = ("read", "triage", "write", "maintain", "admin")


@dataclass
class Hierarchy:
    """One generated entity set: policyd's entries and Cedar's entities, and who and what
    requests may name."""

    entries: list[dict]
    cedar: list[dict]
    principals: list[str]
    resources: list[tuple[str, str, tuple[str, ...]]]  # (type, id, actions)


class _Both:
    def __init__(self):
        self.entries, self.cedar = [], []

    def add(self, t: str, i: str, attrs: dict, parents: list[tuple[str, str]],
            refs: dict[str, str] | None = None) -> None:
        """An entity in both forms; `refs` names the entity type of each reference
        attribute (a set of references when the value is a list)."""
        refs = refs or {}
        entry: dict = {"type": t, "id": i}
        if attrs:
            entry["attrs"] = attrs
        if parents:
            entry["parents"] = [{"type": pt, "id": pi} for pt, pi in parents]
        self.entries.append(entry)

        def cedar_value(name, value):
            if name not in refs:
                return value
            if isinstance(value, list):
                return [{"__entity": {"type": refs[name], "id": v}} for v in value]
            return {"__entity": {"type": refs[name], "id": value}}
        self.cedar.append({"uid": {"type": t, "id": i},
                           "attrs": {k: cedar_value(k, v) for k, v in attrs.items()},
                           "parents": [{"type": pt, "id": pi} for pt, pi in parents]})


def drive(rng: random.Random, users: int, groups: int, docs: int, folders: int,
          p: float) -> Hierarchy:
    """gdrive_entity_generator.py's hierarchy: users in groups, owning documents and
    folders; documents and folders viewable by users and groups; folders in folders."""
    both = _Both()
    members: dict[int, list[int]] = {g: [] for g in range(groups)}
    user_refs = {"view_access": "View", "owned_documents": "Document",
                 "owned_folders": "Folder"}
    for i in range(users):
        parents = []
        for g in range(groups):
            if rng.random() < p:
                parents.append(("Group", f"group_{g}"))
                members[g].append(i)
        owned_docs = [f"doc_{j}" for j in range(docs) if rng.random() < p]
        owned_folders = [f"folder_{j}" for j in range(folders) if rng.random() < p]
        both.add("User", f"user_{i}", {"view_access": f"User user_{i}",
                                       "owned_documents": owned_docs,
                                       "owned_folders": owned_folders}, parents, user_refs)
        both.add("View", f"User user_{i}", {}, [])
    for g in range(groups):
        both.add("Group", f"group_{g}", {}, [])
        both.add("View", f"Group group_{g}", {},
                 [("View", f"User user_{u}") for u in members[g]])
    for j in range(docs):
        parents = [("Folder", f"folder_{k}") for k in range(folders) if rng.random() < p]
        parents += [("View", f"User user_{u}") for u in range(users) if rng.random() < p]
        parents += [("View", f"Group group_{g}") for g in range(groups) if rng.random() < p]
        both.add("Document", f"doc_{j}", {"public": rng.randint(1, 2) == 1}, parents)
    for j in range(folders):
        parents = [("Folder", f"folder_{k}") for k in range(j) if rng.random() < p]
        parents += [("View", f"User user_{u}") for u in range(users) if rng.random() < p]
        parents += [("View", f"Group group_{g}") for g in range(groups) if rng.random() < p]
        both.add("Folder", f"folder_{j}", {}, parents)
    resources = [("Document", f"doc_{j}", ("read", "write", "share", "change_owner"))
                 for j in range(docs)]
    resources += [("Folder", f"folder_{j}", ("create_document",)) for j in range(folders)]
    return Hierarchy(both.entries, both.cedar, [f"user_{i}" for i in range(users)], resources)


def repos(rng: random.Random, n_repos: int, users: int, teams: int, orgs: int,
          p: float) -> Hierarchy:
    """github_entity_generator.py's hierarchy: organisations (in each other's permission
    groups), repositories owned by them, teams in teams (a DAG) holding repository
    permissions, users in teams, organisations and permission groups."""
    both = _Both()
    roles = ("_readers", "_triagers", "_writers", "_maintainers", "_admins")

    def repo_role():
        return roles[min(int(rng.random() / 0.2), 4)]

    def org_role():
        return ("_readers", "_writers", "_admins")[rng.randint(1, 3) - 1]

    org_refs = {"readers": "OrgPermission", "writers": "OrgPermission",
                "admins": "OrgPermission"}
    for i in range(orgs):
        parents = [("OrgPermission", f"org_{j}{org_role()}") for j in range(orgs)
                   if rng.random() < p]
        both.add("Organization", f"org_{i}", {"readers": f"org_{i}_readers",
                                              "writers": f"org_{i}_writers",
                                              "admins": f"org_{i}_admins"}, parents, org_refs)
        for role in ("_readers", "_writers", "_admins"):
            both.add("OrgPermission", f"org_{i}{role}", {}, [])
    repo_refs = {r[1:]: "RepoPermission" for r in roles} | {"owner": "Organization"}
    for i in range(n_repos):
        name = f"repo_{i}"
        attrs = {r[1:]: name + r for r in roles}
        attrs["owner"] = f"org_{rng.randint(0, orgs - 1)}"
        both.add("Repository", name, attrs, [], repo_refs)
        for r in roles:
            both.add("RepoPermission", name + r, {}, [])
    for i in range(teams):
        parents = [("Team", f"team_{j}") for j in range(i) if rng.random() < p]
        parents += [("RepoPermission", f"repo_{j}{repo_role()}") for j in range(n_repos)
                    if rng.random() < p]
        both.add("Team", f"team_{i}", {}, parents)
    for i in range(users):
        parents = [("RepoPermission", f"repo_{j}{repo_role()}") for j in range(n_repos)
                   if rng.random() < p]
        parents += [("Team", f"team_{j}") for j in range(teams) if rng.random() < p]
        for j in range(orgs):
            if rng.random() < p:
                parents.append(("Organization", f"org_{j}"))
            if rng.random() < p:
                parents.append(("OrgPermission", f"org_{j}{org_role()}"))
        both.add("User", f"user_{i}", {}, parents)
    both.cedar.extend(_repo_actions())
    resources = [("Repository", f"repo_{j}", REPO_ACTIONS) for j in range(n_repos)]
    return Hierarchy(both.entries, both.cedar, [f"user_{i}" for i in range(users)], resources)


def _repo_actions() -> list[dict]:
    chain = list(REPO_ACTIONS) + [None]
    return [{"uid": {"type": "Action", "id": a}, "attrs": {},
             "parents": [] if up is None else [{"type": "Action", "id": up}]}
            for a, up in zip(chain, chain[1:], strict=False)]


def requests(rng: random.Random, h: Hierarchy, n: int) -> list[tuple[str, str, str, str]]:
    """n random (user, action, resource type, resource id) requests over the hierarchy."""
    out = []
    for _ in range(n):
        t, i, actions = rng.choice(h.resources)
        out.append((rng.choice(h.principals), rng.choice(actions), t, i))
    return out


def policyd_request(user: str, action: str, t: str, i: str) -> dict:
    return {"principal": {"type": "User", "id": user}, "action": action,
            "resource": {"type": t, "id": i}}


def cedar_request(user: str, action: str, t: str, i: str) -> dict:
    return {"principal": f'User::"{user}"', "action": f'Action::"{action}"',
            "resource": f'{t}::"{i}"', "context": {}}
