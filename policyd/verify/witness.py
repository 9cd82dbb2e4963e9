"""A z3 model as a request `policyd eval` takes: every attribute of the shape, those the
solver left free as plain values ("", 0, false, []), sets as the strings the policy and
the request mention that the model puts in them."""

from __future__ import annotations

import ipaddress
import struct

import z3

from ..language.checked import Const, Op
from .terms import Map


def strings_of(ps) -> set[str]:
    """Every string literal of a set's conditions: the candidates for a set's members."""
    out: set[str] = set()
    todo = [r.cond for tp in ps.plans.types.values() for r in tp.every if r.cond is not None]
    while todo:
        node = todo.pop()
        if isinstance(node, Const):
            if node.type == "string":
                out.add(node.value)
            elif node.type == "set<string>":
                out.update(node.value)
        elif isinstance(node, Op):
            todo.extend(node.args)
            if node.op == "is":
                out.update(node.data)
    return out


def request_of(model, shape, candidates: set[str]) -> tuple[dict, list]:
    """(the request, the entity data it needs) the model describes."""
    def value(term, t):
        if t == "ip":
            return ip_text(model, term)
        if isinstance(term, Map):
            return {k: value(z3.Select(term.values, z3.StringVal(k)), term.type)
                    for k in sorted(pool) if true(z3.Select(term.keys, z3.StringVal(k)))}
        v = model.eval(term, model_completion=True)
        if t == "string":
            return v.as_string()
        if t == "bool":
            return z3.is_true(v)
        if t == "number":
            bits = model.eval(z3.fpToIEEEBV(term), model_completion=True).as_long()
            number = struct.unpack(">d", bits.to_bytes(8, "big"))[0]
            if number != number or number in (float("inf"), float("-inf")):
                return 0  # a map value at a key nothing reads
            return int(number) if number.is_integer() and abs(number) <= 2 ** 53 and \
                str(number) != "-0.0" else number
        return sorted(c for c in pool if true(z3.IsMember(z3.StringVal(c), term)))

    def true(term) -> bool:
        return z3.is_true(model.eval(term, model_completion=True))

    def fields(entity: str, spec, prefix: tuple, whole: bool, into: dict, held: dict):
        for a in spec.attrs:
            path = prefix + (a.name,)
            flag = shape.flags.get((entity, path))
            if a.optional and (flag is None or not true(flag)):
                continue  # absent: never read, or the model leaves it out
            target = held if not prefix and (a.stored or whole) else into
            record = shape.schema.records.get(a.type)
            if record is not None:
                target[a.name] = {}
                fields(entity, record, path, whole, target[a.name], {})
                continue
            found = shape.vars.get((entity, path))
            target[a.name] = plain(a.type, shape.schema.records) if found is None else \
                value(found[0], a.type)

    pid = model.eval(shape.pid, model_completion=True).as_string()
    rid = model.eval(shape.rid, model_completion=True).as_string()
    pool = set(candidates) | {pid, rid}
    for term, spec in shape.vars.values():
        if spec.type == "string":
            pool.add(model.eval(term, model_completion=True).as_string())
    parts: dict = {}
    data: list = []
    for entity, spec in shape.specs.items():
        attrs, held = {}, {}
        if spec is not None:
            fields(entity, spec, (), spec.whole, attrs, held)
        parts[entity] = attrs
        if spec is not None and entity != "context" and (spec.whole or spec.stored):
            data.append({"kind": entity, "type": spec.name,
                         "id": pid if entity == "principal" else rid, "attrs": held})
    request = {"principal": _part(shape.ptype, pid, parts["principal"],
                                  shape.specs["principal"]),
               "action": shape.action,
               "resource": _part(shape.rtype, rid, parts["resource"],
                                 shape.specs["resource"])}
    if shape.schema.context is not None:
        request["context"] = parts["context"]
    return request, data


def _part(t: str, i: str, attrs: dict, spec) -> dict:
    """A principal or resource as a request sends it: a type stored whole is named by
    type and id alone."""
    return {"type": t, "id": i} if spec.whole else {"type": t, "id": i, "attrs": attrs}


def ip_text(model, ip) -> str:
    """An ip value of the model as a request writes it: an address, or a CIDR range."""
    def number(bv):
        return model.eval(bv, model_completion=True).as_long()
    v6 = z3.is_true(model.eval(ip.v6, model_completion=True))
    first, last = number(ip.first), number(ip.last)
    address = (ipaddress.IPv6Address if v6 else ipaddress.IPv4Address)(first)
    if first == last:
        return str(address)
    return f"{address}/{(128 if v6 else 32) - (last - first + 1).bit_length() + 1}"


def plain(t: str, records: dict):
    """A valid value of type `t` for an attribute nothing reads."""
    if t in ("string",) or t[:1].isupper() and t not in records:
        return "" if t == "string" else "x"
    if t == "number":
        return 0
    if t == "bool":
        return False
    if t == "ip":
        return "0.0.0.0"
    if t == "time":
        return "1970-01-01T00:00:00Z"
    if t.startswith("set<"):
        return []
    if t.startswith("map<"):
        return {}
    record = records[t]
    return {a.name: plain(a.type, records) for a in record.attrs if not a.optional}
