"""Generated request validators: exact types, every required attribute, nothing
undeclared, strings within max_string_bytes; records and maps get a function of their
own. A mixin of the code generator (codegen.py), writing into its CodeWriter."""

from __future__ import annotations

from dataclasses import replace

from ..values import MAX_INT
from .codewriter import CodeWriter, safe_comment
from .schema import (
    BOOL,
    IP,
    NUMBER,
    STRING,
    TIME,
    EntitySchema,
    is_map,
    is_set,
    map_value,
    runtime_type,
)


class ValidatorCode:

    def validator(self, fn: str, schema: EntitySchema, attrs=None, all_optional=False) -> None:
        """Exact types, every required attribute, nothing undeclared. Failures raise and the
        engine explains them; the success path is one combined test per kind of value.
        `attrs` defaults to what a request sends (stored attributes come from data)."""
        self.w.comment(f"{schema.kind} {schema.name}: exact attribute types, nothing undeclared")
        with self.w.origin(schema.file, schema.line):
            self.w.line(f"def {fn}(a, {self._arg}):")
            with self.w.indent():
                self.validator_body(schema, attrs, all_optional)
                self.w.line("return o")
        self.w.line()

    def validator_body(self, schema: EntitySchema, attrs=None, all_optional=False,
                       src: str = "a", dst: str = "o", roles: frozenset = frozenset(),
                       undecided: str = "") -> None:
        """The checks of a validator on the dict `src`, leaving the validated attributes in
        `dst`: the body of a validator, and inlined in a fast path (fastpath.py), where the
        set attributes named in `roles` must hold declared role names only (else the
        statement `undecided`)."""
        attrs = schema.sent if attrs is None else attrs
        attrs = [a if runtime_type(a.type, self.cs.typed) == a.type else
                 replace(a, type=runtime_type(a.type, self.cs.typed)) for a in attrs]
        supplies_time = schema.kind == "context" and any(
            a.name == "time" and a.type == TIME for a in attrs)
        converts = self.pooling or supplies_time or any(self._converts(a.type) for a in attrs)
        optional = [a for a in attrs if all_optional or a.optional
                    or (supplies_time and a.name == "time")]
        required = [a for a in attrs if a not in optional]
        count = " + ".join([str(len(required))] + [f"({a.name!r} in {src})" for a in optional])
        w = self.w
        w.line(f"if type({src}) is not dict or len({src}) != {count}: raise _rt.Invalid")
        scalars = [self._scalar_test(f"{src}[{a.name!r}]", a.type) for a in required
                   if a.type in (STRING, BOOL, NUMBER)]
        if scalars:
            w.line(f"if {' or '.join(scalars)}: raise _rt.Invalid")
        # data validators own their input (fresh from JSON): pooled in place
        w.line(f"{dst} = dict({src})" if converts and not self.pooling else f"{dst} = {src}")
        if supplies_time:
            w.line(f"if 'time' not in {src}: {dst}['time'] = now()")
        for spec in required:
            if spec.type not in (STRING, BOOL, NUMBER):
                self._attribute(w, src, dst, spec, roles, undecided)
        for spec in optional:
            w.line(f"if {spec.name!r} in {src}:")
            with w.indent():
                self._attribute(w, src, dst, spec, roles, undecided)

    def _attribute(self, w: CodeWriter, src: str, dst: str, spec, roles: frozenset,
                   undecided: str) -> None:
        if spec.name in roles and is_set(spec.type):
            # declared roles only (one issuperset), then exact types: a str subclass such
            # as a StrEnum member is invalid on every path, equal or not
            w.line(f"v = {src}[{spec.name!r}]")
            w.line("if type(v) is not list and type(v) not in SEQUENCES or "
                   f"not KR.issuperset(v): {undecided}")
            w.line("for y in v:")
            with w.indent():
                w.line("if type(y) is not str: raise _rt.Invalid")
        else:
            self._value(w, f"{src}[{spec.name!r}]", f"{dst}[{spec.name!r}]", spec.type)

    def route_lines(self) -> list[str]:
        """The HTTP inventory, as comments: routes are matched by the engine, not here."""
        if not self.cs.routes:
            return []
        return ["# routes (matched by policyd.engine.routes; anything else is unknown_route):",
                *(f"#   {safe_comment(r.method)} {safe_comment(r.template)} -> {r.resource}."
                  f"{r.action}  ({safe_comment(r.file)}:{r.line})" for r in self.cs.routes)]

    def data_validator(self, validators: dict, fn: str, schema: EntitySchema) -> None:
        """Entity data holds only stored attributes, each optional here: a required one
        that an entry lacks denies at decision time (`missing_data:...`). Data validators
        take a pool, `S(value, value)`, instead of a clock: a million entities' sets
        become shared tuples and their map keys interned in the same pass."""
        if schema.stored or schema.whole:
            validators[f"data:{schema.kind}:{schema.name}"] = fn
            self.pooling = True
            try:
                self.validator(fn, schema, schema.stored, all_optional=True)
            finally:
                self.pooling = False

    @property
    def _arg(self) -> str:
        return "S" if self.pooling else "now"

    def _converts(self, t: str, seen: frozenset = frozenset()) -> bool:
        """A value of this type is rebuilt on validation: ip and time become their runtime
        forms, and records and maps that hold them are copied; anything else is checked
        and used as it came (no copy of a record or map of plain values)."""
        if t in (IP, TIME):
            return True
        if is_map(t):
            return self._converts(map_value(t), seen)
        record = self.cs.records.get(t)
        if record is None or t in seen:
            return False
        return any(self._converts(a.type, seen | {t}) for a in record.attrs)

    def _scalar_test(self, v: str, t: str) -> str:
        """An expression true when `v` is NOT of type `t` (numbers: int or finite float;
        strings: at most max_string_bytes of UTF-8, measured only past a quarter of it)."""
        if t == STRING:
            if "[" in v:  # read the value once: `s` is rebound by each test of a chain
                v, first = "s", f"(s := {v})"
            else:
                first = v
            return f"type({first}) is not str or len({v}) > {self.max_bytes // 4} and " \
                f"_rt.too_long({v}, {self.max_bytes})"
        if t == BOOL:
            return f"type({v}) is not bool"
        if "[" in v:
            v, first = "n", f"(n := {v})"
        else:
            first = v
        # _rt.is_number inline: an int within +-2**53, or a float that is finite (inf - inf
        # and NaN are NaN)
        return (f"(type({first}) is not int and (type({v}) is not float or {v} - {v} != 0.0) "
                f"or type({v}) is int and not {-MAX_INT} <= {v} <= {MAX_INT})")

    def _value(self, w: CodeWriter, src: str, dst: str, t: str) -> None:
        """Lines that check `src` is a `t` and, for converted types, store it in `dst`."""
        if t in (STRING, BOOL, NUMBER):
            w.line(f"if {self._scalar_test(src, t)}: raise _rt.Invalid")
            if "[" not in dst:
                w.line(f"{dst} = {src}")
        elif t in (IP, TIME):
            w.line(f"{dst} = _rt.{t}({src})")
        elif t in self.cs.records or is_map(t):
            if self.pooling or self._converts(t):
                w.line(f"{dst} = {self.type_function(t)}({src}, {self._arg})")
            else:  # checked in place: the value is used as it came
                w.line(f"{self.type_function(t)}({src}, {self._arg})")
        else:
            w.line(f"v = {src}")
            w.line("if type(v) is not list and type(v) not in SEQUENCES: raise _rt.Invalid")
            check = self._scalar_test("y", STRING if t == "set<string>" else NUMBER)
            w.line("for y in v:")
            with w.indent():
                w.line(f"if {check}: raise _rt.Invalid")
            if self.pooling:
                w.line(f"{dst} = S(v := tuple(v), v)")
            elif "[" not in dst:
                w.line(f"{dst} = v")

    def type_function(self, t: str) -> str:
        """The validator of a record or map type, written once into the module."""
        name = self.type_functions.get((t, self.pooling))
        if name is not None:
            return name
        name = self.type_functions[(t, self.pooling)] = f"t{len(self.type_functions)}"
        if t in self.cs.records:
            saved, self.w = self.w, CodeWriter()
            self.validator(name, self.cs.records[t])
            self.type_source.append(self.w.source())
            self.w = saved
            return name
        w = CodeWriter()
        w.comment(f"{t}: string keys, each value checked")
        copies = self.pooling or self._converts(t)
        w.line(f"def {name}(a, {self._arg}):")
        with w.indent():
            w.line("if type(a) is not dict: raise _rt.Invalid")
            w.line("o = {}" if copies else "o = a  # plain values: checked, not copied")
            w.line("for k, x in a.items():")
            with w.indent():
                w.line(f"if {self._scalar_test('k', STRING)}: raise _rt.Invalid")
                if self.pooling:
                    w.line("k = S(k, k)")
                self._value(w, "x", "o[k]", map_value(t))
                if copies and (map_value(t) in (STRING, BOOL, NUMBER) or
                               is_set(map_value(t)) and not self.pooling):
                    w.line("o[k] = x")
            w.line("return o")
        self.type_source.append(w.source())
        return name
