"""The generated fast path: one function that does the whole common decision (envelope,
both validators, the roles test, the decider, the memo of identical decisions, the rate
buckets) in one Python frame, the engine's `check` itself. A mixin of the code generator
(codegen.py).

It answers a request of exactly principal, action, resource (and context, where the set
declares one, and write_fields), each entity with its `attrs`, of declared types with no
stored attributes, whose principal holds only declared roles, for a decision the general
path has already memoised (a write that a rule refuses is handed over, to be named). It hands anything else to the general path `G`, which decides it from scratch
and explains what is wrong; an invalid value raises inside it, and is handed over too.
Nothing before the rate store is asked has a side effect, so handing over never takes a
token twice.
"""

from __future__ import annotations

from .schema import EntitySchema, is_map, is_set, map_value

FAST_COMMENT = """\
# the fast path (language/fastpath.py), bound by the engine as its `check`: a request
# of exactly principal, action, resource (context, where declared; write_fields), with
# attrs, of declared types without stored attributes, whose principal holds only
# declared roles, decided in one function: envelope, validators, decider, writes, the
# memo of identical decisions and the rate buckets. Anything else, or a decision not
# memoised yet, goes to the general path G, which decides it from scratch (and fills
# the memo).
DC = {}  # deny outcome -> Decision"""
UNDECIDED = "return G(request, False)"  # in the entry: the general path decides
INLINE_MAX = 8  # more types than this: dispatch by dict to per-type functions


class FastPathCode:
    undecided = UNDECIDED

    def fast_paths(self, deciders: dict, limiters: dict) -> str:
        """Write the fast path after the deciders; returns its name ("" when no type
        qualifies: every request then takes the general path)."""
        principals = [(i, p) for i, p in enumerate(self.cs.principals.values()) if not p.stored]
        resources = [(t, r) for t, r in enumerate(self.cs.resources.values()) if not r.stored]
        if not principals or not resources:
            return ""
        w = self.w
        for line in FAST_COMMENT.splitlines():
            w.line(line)
        w.line(f"KR = _rt.fs({tuple(sorted(self.cs.roles))!r})  # every declared role")
        w.line("E0 = _rt.EMPTY  # the attributes of an entity sent without `attrs`")
        for t, res in resources:
            table = ", ".join(
                f"{action!r}: ({deciders[(res.name, action)]}, "
                f"{limiters.get((res.name, action), 'None')}, AC_{t}, write_{t}, FB_{t})"
                for action in res.actions
                if len(action.encode()) <= self.max_bytes  # else invalid: the general path
                and (res.name, action) not in self.output_actions)  # outputs: general path
            bits = {f: 1 << i for i, f in enumerate(("id",) + res.fields)}
            w.line(f"AC_{t} = {{}}  # {res.name}: allow outcome -> Decision")
            w.line(f"FB_{t} = {bits!r}  # {res.name}: field -> its bit in write masks")
            w.line(f"A_{t} = {{{table}}}  # {res.name}: action -> (decider, limiter, memo, "
                   "write mask, field bits)")
        by_dict = len(principals) > INLINE_MAX, len(resources) > INLINE_MAX
        if by_dict[0]:
            for i, p in principals:
                self.fast_function(f"fp_{i}", i, p, "pa", "P", self.fast_principal)
            w.line(f"FP = {{{', '.join(f'{p.name!r}: fp_{i}' for i, p in principals)}}}")
        if by_dict[1]:
            for t, r in resources:
                self.fast_function(f"fr_{t}", t, r, "ra", "R", self.fast_resource)
            w.line(f"FR = {{{', '.join(f'{r.name!r}: fr_{t}' for t, r in resources)}}}")
        w.line()
        self.fast_entry(principals, resources, by_dict)
        return "bind"

    def fast_entry(self, principals: list, resources: list, by_dict: tuple) -> None:
        """`bind(now, L, G, A)` returns `fast(request, explain=False)`, the engine's `check`
        itself, closed over the engine's clock, its refused-rate step `L`, its general
        path `G` and its rate store's `acquire` `A` (a closure: a functools.partial in
        front of it cost a fifth of the hand-written chain)."""
        w = self.w
        w.line("def bind(now, L, G, A):")
        with w.indent():
            self._fast_function(principals, resources, by_dict)
            w.line("return fast")
        if self.cs.context is None:
            w.line("C0 = {}  # no context is declared: every decider reads this empty one")
        w.line()

    def _fast_function(self, principals: list, resources: list, by_dict: tuple) -> None:
        w = self.w
        w.line("def fast(request, explain=False):")
        with w.indent():
            w.line("if explain: return G(request, True)")
            w.line("try:")
            with w.indent():
                self.fast_envelope()
                w.line("pt = p['type']")
                w.line("pa = p['attrs']")
                self.fast_dispatch("pt", "pa", "P", principals, by_dict[0], "FP",
                                   self.fast_principal)
                w.line("rt = r['type']")
                w.line("ra = r['attrs']")
                self.fast_dispatch("rt", "ra", "R", resources, by_dict[1], "FR",
                                   self.fast_resource)
                self.fast_decision()
            w.line("except _rt.RequestError:")
            w.line("    raise  # the general path's own explanation of an invalid request")
            w.line("except Exception:")
            w.line("    return G(request, False)  # an invalid value, or anything unforeseen")
            w.line("if not b: return found")
            w.line("try:  # step 8, once: from here on nothing is handed to the general path")
            w.line("    v = A(b, now(), False)")
            w.line("except Exception as e:")
            w.line("    return L(found, e)  # the store's failure mode")
            w.line("return L(found, v) if v.exhausted else found")

    def fast_envelope(self) -> None:
        """Exactly the keys a covered request has, string ids and action, the fields."""
        w, q = self.w, self.max_bytes // 4
        w.line("wf = request.get('write_fields')")
        # the shapes front doors and clients send: the usual one is counted cheaply; any
        # other is counted key by key (a context or write_fields of None, dry_run false)
        other = ("len(request) != 3 + ('context' in request) + ('write_fields' in request) "
                 "+ ('dry_run' in request) or request.get('dry_run', False) is not False "
                 "or c is None and 'context' in request")  # null: the general path refuses
        if self.cs.context is not None:
            w.line("c = request.get('context')")
            w.line("if len(request) != 3 + (c is not None) + (wf is not None) and (" + other +
                   "): return G(request, False)")
        else:  # no context is declared: an empty one (or None) is no context
            w.line("if len(request) != 3 + (wf is not None):")
            with w.indent():
                w.line("c = request.get('context')")
                w.line(f"if {other} or c is not None and (type(c) is not dict or c): "
                       "return G(request, False)")
        w.line("p = request['principal']")
        w.line("r = request['resource']")
        w.line("action = request['action']")
        # type, id and attrs; an entity sent without attrs (a type declaring none) too
        w.line("if len(p) != 3 or len(r) != 3:")
        with w.indent():
            w.line("if len(p) != 2 + ('attrs' in p) or len(r) != 2 + ('attrs' in r): "
                   "return G(request, False)")
            w.line("if 'attrs' not in p: p = {**p, 'attrs': E0}")
            w.line("if 'attrs' not in r: r = {**r, 'attrs': E0}")
        w.line("pid = p['id']")
        w.line("rid = r['id']")
        # the action is looked up among declared ones, each within max_string_bytes
        w.line("if type(pid) is not str or type(rid) is not str or type(action) is not "
               f"str or not pid or not rid or len(pid) > {q} or len(rid) > {q}: "
               "return G(request, False)")
        w.line("if wf is not None:")
        with w.indent():
            w.line("if type(wf) is not list: return G(request, False)")
            w.line("for f in wf:")
            w.line(f"    if type(f) is not str or len(f) > {q}: return G(request, False)")

    def fast_decision(self) -> None:
        """The decider, the writes, the memo, and the rate buckets (not yet taken)."""
        w = self.w
        w.line("if x is None: return G(request, False)")
        w.line("C = v_c(c if c is not None else {}, now)" if self.cs.context is not None
               else "C = C0")
        w.line("o = x[0](pid, P, rid, R, C, pt)")
        w.line("if wf and type(o) is int:  # allowed: every field written must be granted")
        with w.indent():
            w.line("g = x[3](pid, P, rid, R, C, pt, action)")
            w.line("for f in wf:")
            w.line("    if not g & x[4].get(f, 0): return G(request, False)  # refused: "
                   "named there")
        w.line("found = x[2].get(o) if type(o) is int else DC.get(o)")
        w.line("if found is None: return G(request, False)  # not memoised yet")
        w.line("if x[1] is None: return found")
        w.line("b = x[1](pid, P, rid, R, C, pt)")

    def fast_dispatch(self, name: str, src: str, dst: str, types: list, by_dict: bool,
                      table: str, body) -> None:
        """Validate `src` into `dst` by the entity's type, inline (an if chain) for a few
        types, else through per-type functions; an undeclared type returns None."""
        w = self.w
        if by_dict:
            w.line(f"f = {table}.get({name})")
            w.line("if f is None: return G(request, False)")
            w.line(f"{dst}, x = f({src}, action, now)" if dst == "R" else
                   f"{dst} = f({src}, now)")
            w.line(f"if {dst} is None: return G(request, False)")
            return
        for k, (t, schema) in enumerate(types):
            w.line(f"{'if' if k == 0 else 'elif'} {name} == {schema.name!r}:")
            with w.indent():
                body(schema, t)
        w.line("else: return G(request, False)")

    def fast_function(self, fn: str, index: int, schema, src: str, dst: str, body) -> None:
        """One type's part of the fast path, for a set with many types."""
        w = self.w
        w.line(f"def {fn}({src}, action, now):" if dst == "R" else f"def {fn}({src}, now):")
        with w.indent():
            self.undecided = "return None"  # and the entry, seeing None, asks the general path
            body(schema, index)
            self.undecided = UNDECIDED
            w.line(f"return {dst}, x" if dst == "R" else f"return {dst}")
        w.line()

    def fast_principal(self, p: EntitySchema, i: int) -> None:
        sets = frozenset(a for a in ("roles", *self.cs.role_attrs)
                         if a in p.by_name and is_set(p.by_name[a].type))
        self.validator_body(p, src="pa", dst="P", roles=sets, undecided=self.undecided)
        self.fast_roles(p, sets)

    def fast_resource(self, res: EntitySchema, t: int) -> None:
        self.validator_body(res, src="ra", dst="R")
        w = self.w
        w.line(f"x = A_{t}.get(action)")

    def fast_roles(self, p: EntitySchema, sets: frozenset) -> None:
        """Role names in maps (workspace -> roles) are declared ones too; a role attribute
        of any other kind leaves the principal type to the general path."""
        w = self.w
        for attr in self.cs.role_attrs:
            spec = p.by_name.get(attr)
            if spec is None or attr in sets:
                continue
            if not (is_map(spec.type) and is_set(map_value(spec.type))):
                w.line(f"{self.undecided}  # role names in a value of another kind")
                return
            value = f"P.get({attr!r}, {{}})" if spec.optional else f"P[{attr!r}]"
            w.line(f"for v in {value}.values():")
            with w.indent():
                w.line(f"if not KR.issuperset(v): {self.undecided}")
