"""The entity hierarchy (1.2): parents from entity data, ancestors computed once per
entity and data version, and the checks the data must pass (an acyclic graph).

Parents are kept as `{type: {id: ((parent type, parent id), ...)}}`. The ancestors of
an entity are `{type: frozenset(ids)}`, so `A in B` is two dict lookups and a set test
however deep the hierarchy is (docs/language.md, "Relationships").
"""

from __future__ import annotations

import itertools
from collections import Counter

EMPTY_ANCESTORS: dict = {}  # an entity with no parents (never written to)
MAX_PARENTS = 10_000  # direct parents one entity may list (in data or in a request)


def _same(key, value):
    return value


class ParentsInvalid(ValueError):
    """Parents that are not a list of declared {"type", "id"} pairs (the message says
    which)."""


def parents_of(value, allowed, pool=_same) -> tuple:
    """An entry's `parents` as (type, id) pairs, each pair pooled (a million children of
    one group hold one pair); raises ParentsInvalid naming the first problem."""
    if type(value) is not list or len(value) > MAX_PARENTS:
        raise ParentsInvalid("parents: expected a list of at most 10,000 {\"type\": ..., "
                             "\"id\": ...} objects")
    out = []
    for p in value:
        if type(p) is not dict or len(p) != 2:
            _explain(value, allowed)
        t, i = p.get("type"), p.get("id")
        if type(t) is not str or t not in allowed or type(i) is not str or not i:
            _explain(value, allowed)
        pair = (t, i)
        out.append(pool(pair, pair))
    return tuple(out)


def _explain(value: list, allowed) -> None:
    for n, p in enumerate(value):
        if type(p) is not dict or len(p) != 2 or type(p.get("type")) is not str or \
                type(p.get("id")) is not str or not p["id"]:
            raise ParentsInvalid(f"parents[{n}] is not {{\"type\": ..., \"id\": ...}} with a "
                                 "non-empty string id")
        if p["type"] not in allowed:
            raise ParentsInvalid(f"parents[{n}]: a parent of type `{p['type']}` is not "
                                 "declared (`in " + (", ".join(allowed) or "nothing") + "`)")
    raise ParentsInvalid("parents: not a list of {\"type\": ..., \"id\": ...} objects")


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
    None. Kahn's algorithm from the entities no one lists as a parent, with the child
    counts made at C speed (Counter over every edge): a million entities and five
    million edges in about a second; the rare cyclic graph is then walked for a cycle."""
    children: Counter = Counter()
    for table in parents.values():  # in batches: no long GIL hold (a reload runs beside)
        rows = iter(table.values())
        while batch := list(itertools.islice(rows, 50_000)):
            children.update(itertools.chain.from_iterable(batch))
    stack = [(t, i) for t, table in parents.items() for i in table if (t, i) not in children]
    while stack:
        t, i = stack.pop()
        for p in parents[t][i]:
            left = children[p] - 1
            children[p] = left
            if left == 0 and p[1] in parents.get(p[0], EMPTY_ANCESTORS):
                stack.append(p)
    rest = {pair for pair, left in children.items() if left > 0}
    return _cycle_among(parents, rest) if rest else None


def _cycle_among(parents: dict, nodes: set) -> list[tuple[str, str]] | None:
    """A cycle through the entities Kahn's algorithm could not remove (a depth-first
    walk, iterative: no depth of hierarchy exhausts the recursion limit)."""
    state: dict = {}  # pair -> 1 on the current path, 2 done
    for root in sorted(nodes):
        if root in state:
            continue
        state[root], path = 1, [root]
        stack = [iter(parents.get(root[0], EMPTY_ANCESTORS).get(root[1], ()))]
        while stack:
            for pair in stack[-1]:
                mark = state.get(pair)
                if mark == 1:
                    return path[path.index(pair):] + [pair]
                if mark is None and pair in nodes:
                    state[pair] = 1
                    path.append(pair)
                    stack.append(iter(parents.get(pair[0], EMPTY_ANCESTORS).get(pair[1], ())))
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
