"""policyd's value types as z3 terms, exactly as the engine holds them: the sorts of
strings, doubles, bools and string sets, an ip value's `(version, first, last)`, a
map's keys and values; and Unsupported, the `unknown` answer for the rest."""

from __future__ import annotations

import z3

NUMBER = z3.Float64()
RNE = z3.RNE()
_SORTS = {"string": z3.StringSort(), "bool": z3.BoolSort(), "number": NUMBER}


class Unsupported(Exception):
    """A construct the model does not cover yet: the answer is `unknown`, naming it."""


class Ip:
    """An ip value as the engine holds it, `(version, first, last)`: IPv6 or not, and
    the first and last address of the range (one address: first == last) as 128-bit
    vectors."""

    __slots__ = ("v6", "first", "last")

    def __init__(self, v6, first, last):
        self.v6, self.first, self.last = v6, first, last

    @classmethod
    def var(cls, name: str):
        return cls(z3.Bool(name + ".v6"), z3.BitVec(name + ".first", 128),
                   z3.BitVec(name + ".last", 128))

    @classmethod
    def of(cls, value) -> Ip:
        version, first, last = value
        return cls(z3.BoolVal(version == 6), z3.BitVecVal(first, 128),
                   z3.BitVecVal(last, 128))

    def valid(self):
        """What parsing allows: a CIDR-aligned range, within 32 bits for IPv4, and an
        IPv6 address or /96-or-longer range never inside ::ffff:0:0/96 (IPv4-mapped
        addresses are IPv4: values.parse_ip)."""
        size = self.last - self.first
        v4_top = z3.BitVecVal((1 << 32) - 1, 128)
        mapped = z3.BitVecVal(0xFFFF << 32, 128)
        return z3.And(z3.ULE(self.first, self.last), size & (size + 1) == 0,
                      self.first & size == 0,
                      z3.If(self.v6, z3.Not(z3.And(z3.ULE(size, v4_top),
                                                   z3.ULE(mapped, self.first),
                                                   z3.ULE(self.last, mapped | v4_top))),
                            z3.ULE(self.last, v4_top)))

    def within(self, r: Ip):
        return z3.And(self.v6 == r.v6, z3.ULE(r.first, self.first),
                      z3.ULE(self.last, r.last))

    def same(self, other: Ip):
        return z3.And(self.v6 == other.v6, self.first == other.first,
                      self.last == other.last)


def sort_of(t: str):
    if t in _SORTS:
        return _SORTS[t]
    if t == "set<string>":
        return z3.SetSort(z3.StringSort())
    raise Unsupported(f"attributes of type {t}")


class Map:
    """A `map<string, T>` value: which keys it has, and the value at each."""

    __slots__ = ("keys", "values", "type")

    def __init__(self, name: str, value_type: str):
        self.keys = z3.Array(name + ".keys", z3.StringSort(), z3.BoolSort())
        self.values = z3.Array(name + ".values", z3.StringSort(), sort_of(value_type))
        self.type = value_type


def finite(term) -> list:
    return [z3.Not(z3.fpIsNaN(term)), z3.Not(z3.fpIsInf(term))]
