"""The runtime that generated policy code calls: value parsing and the few operators
that are not plain Python expressions. Generated code sees this module as `_rt`
and, as builtins, only the few type names in BUILTINS.

Representations: an ip is `(version, first, last)` as integers (an address is a
range of one); a time is float seconds since the epoch, UTC; sets from requests
stay lists and the helpers below give them set semantics.
"""

from __future__ import annotations

import hashlib

from ..values import IpValue, parse_ip, parse_time, utf8_len
from ..values import is_number as is_number  # generated code calls _rt.is_number
from .models import RequestError as RequestError  # the fast path lets it through

fs = frozenset
EMPTY: dict = {}  # the attributes of an entity sent without them (never written to)
# The only builtins generated code can reach: the validators' type tests.
BUILTINS = {"type": type, "len": len, "dict": dict, "list": list, "tuple": tuple, "str": str,
            "bool": bool, "int": int, "float": float,
            "Exception": Exception}  # the fast path hands any failure to the general path
SEQUENCES = (list, tuple, set, frozenset)  # a request's set may come as any of these

_CACHE_MAX = 65536
class Invalid(Exception):
    """A request value that does not fit its declared type (the engine explains it)."""


class MissingData(Exception):
    """A read through a reference to an entity that the entity data does not hold: the
    decision denies with `missing_data:PATH` (the reference's path)."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


# The key under which a request's principal or resource carries the ancestors of the
# parents the request sent (1.2): never an identifier, so never a declared attribute.
ANCESTORS = "\x00ancestors"


def _cached(parse, what: str):
    """A request-side converter of strings, cached (clients repeat their addresses and
    times), refusing anything that is not a valid string with Invalid."""
    cache: dict = {}

    def convert(text):
        try:
            return cache[text]
        except KeyError:
            pass
        if type(text) is not str:
            raise Invalid
        try:
            value = parse(text)
        except ValueError:
            raise Invalid from None
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        cache[text] = value
        return value

    convert.__name__ = convert.__qualname__ = what
    return convert


ip = _cached(parse_ip, "ip")
time = _cached(parse_time, "time")


# ---- operators ---------------------------------------------------------------


def in_order(held: list) -> tuple:
    """The names of the denies that held, in source order ((position, name) pairs: an
    indexed decider finds them out of order)."""
    return tuple(name for _, name in sorted(held))


def ip_in(x: IpValue, r: IpValue) -> bool:
    return x[0] == r[0] and r[1] <= x[1] and x[2] <= r[2]


def ip_in_any(x: IpValue, ranges) -> bool:
    for r in ranges:  # noqa: SIM110 -- a plain loop is faster than any() on the hot path
        if x[0] == r[0] and r[1] <= x[1] and x[2] <= r[2]:
            return True
    return False


def like(s: str, parts: tuple[str, ...]) -> bool:
    """Glob match where `*` is the only wildcard; `parts` is the pattern split on `*`.
    Greedy leftmost matching of the middle parts is exact for such patterns."""
    if len(parts) == 1:
        return s == parts[0]
    head, tail = parts[0], parts[-1]
    if len(s) < len(head) + len(tail) or not s.startswith(head) or not s.endswith(tail):
        return False
    pos, end = len(head), len(s) - len(tail)
    for part in parts[1:-1]:
        found = s.find(part, pos, end)
        if found < 0:
            return False
        pos = found + len(part)
    return True


def any_of(s, t) -> bool:
    return not set(s).isdisjoint(t)


def all_of(s, t) -> bool:
    return set(s).issuperset(t)


def set_eq(a, b) -> bool:
    return set(a) == set(b)


def set_len(s) -> int:
    return len(set(s))


def hour(t: float) -> int:
    return int(t // 3600 % 24)


def weekday(t: float) -> int:
    """ISO weekday, 1 (Monday) to 7; 1970-01-01 was a Thursday."""
    return int((t // 86400 + 3) % 7) + 1


def lower(s: str) -> str:
    return s.lower()


def length(x) -> int:
    return len(x)


# ---- bounds: failures here raise, and the engine denies with reason `error` ---------


class NonFinite(ArithmeticError):
    """Arithmetic in a condition gave infinity or NaN: the decision fails closed."""


def finite(v):
    """An arithmetic result, refused when not finite (inf - inf is NaN, and NaN > x is
    false, so a deny written with arithmetic could silently stop holding)."""
    if v - v == 0:
        return v
    raise NonFinite("arithmetic in a condition gave a value that is not a finite number")


def too_long(s: str, max_bytes: int) -> bool:
    return utf8_len(s) > max_bytes


def digest(s: str) -> bytes:
    """A fixed-size stand-in for a long bucket key string (the memory store's bound)."""
    return hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=16).digest()
