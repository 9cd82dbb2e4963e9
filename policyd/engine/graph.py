"""The entity hierarchy (1.2): parents from entity data, ancestors computed once per
entity and data version, and the checks the data must pass (an acyclic graph).

Parents are kept as `{type: {id: ((parent type, parent id), ...)}}`. The ancestors of
an entity are `{type: frozenset(ids)}`, so `A in B` is two dict lookups and a set test
however deep the hierarchy is (docs/language.md, "Relationships").
"""

from __future__ import annotations

EMPTY_ANCESTORS: dict = {}  # an entity with no parents (never written to)
MAX_PARENTS = 10_000  # direct parents one entity may list (in data or in a request)


def _same(key, value):
    return value


class ParentsInvalid(ValueError):
    """Parents that are not a list of declared {"type", "id"} pairs (the message says
    which)."""


def parents_of(value, allowed: tuple[str, ...], pool=_same) -> tuple:
    """An entry's `parents` as pooled (type, id) pairs; raises ParentsInvalid naming the
    first problem."""
    if type(value) is not list or len(value) > MAX_PARENTS:
        raise ParentsInvalid("parents: expected a list of at most 10,000 {\"type\": ..., "
                             "\"id\": ...} objects")
    out = []
    for n, p in enumerate(value):
        if type(p) is not dict or len(p) != 2 or type(p.get("type")) is not str or \
                type(p.get("id")) is not str or not p["id"]:
            raise ParentsInvalid(f"parents[{n}] is not {{\"type\": ..., \"id\": ...}} with a "
                                 "non-empty string id")
        if p["type"] not in allowed:
            raise ParentsInvalid(f"parents[{n}]: a parent of type `{p['type']}` is not "
                                 "declared (`in " + (", ".join(allowed) or "nothing") + "`)")
        pair = (pool(p["type"], p["type"]), pool(p["id"], p["id"]))
        out.append(pool(pair, pair))
    return tuple(out)


def closure(parents: dict, start, memo: dict | None = None) -> dict:
    """{type: frozenset(ids)} of every entity reachable upwards from the pairs `start`
    (themselves included); `memo` ({type: {id: ancestors}}) answers for entities whose
    ancestors are already known."""
    found: dict[str, set] = {}
    seen: set = set()
    todo = list(start)
    while todo:
        pair = todo.pop()
        if pair in seen:
            continue
        seen.add(pair)
        t, i = pair
        found.setdefault(t, set()).add(i)
        known = memo.get(t, EMPTY_ANCESTORS).get(i) if memo is not None else None
        if known is not None:
            for kt, ids in known.items():
                found.setdefault(kt, set()).update(ids)
            continue
        todo.extend(parents.get(t, EMPTY_ANCESTORS).get(i, ()))
    return {t: frozenset(ids) for t, ids in found.items()}


def find_cycle(parents: dict) -> list[tuple[str, str]] | None:
    """One cycle of the parent graph (its entities, the first repeated at the end), or
    None. Iterative: no depth of hierarchy can exhaust the recursion limit."""
    state: dict = {}  # pair -> 1 on the current path, 2 done
    for t, table in parents.items():
        for i in table:
            root = (t, i)
            if root in state:
                continue
            state[root], path, stack = 1, [root], [iter(table[i])]
            while stack:
                for pair in stack[-1]:
                    mark = state.get(pair)
                    if mark == 1:
                        return path[path.index(pair):] + [pair]
                    if mark is None:
                        state[pair] = 1
                        path.append(pair)
                        stack.append(iter(parents.get(pair[0], EMPTY_ANCESTORS).get(pair[1],
                                                                                    ())))
                        break
                else:
                    state[path.pop()] = 2
                    stack.pop()
    return None


def chain(parents: dict, start: tuple[str, str], goal: tuple[str, str],
          first: tuple = ()) -> list | None:
    """The shortest path of parents from `start` up to `goal` (both included), or None:
    what `explain` shows for an `in` that held (`user_3 -> team_2 -> repo_7_writers`).
    `first`: parents of `start` besides the data's (those its request sent)."""
    if start == goal:
        return [start]
    before, todo = {start: None}, [start]
    while todo:
        nxt = []
        for pair in todo:
            up = parents.get(pair[0], EMPTY_ANCESTORS).get(pair[1], ())
            for p in (*first, *up) if pair == start else up:
                if p in before:
                    continue
                before[p] = pair
                if p == goal:
                    path = [p]
                    while before[path[-1]] is not None:
                        path.append(before[path[-1]])
                    return path[::-1]
                nxt.append(p)
        todo = nxt
    return None
