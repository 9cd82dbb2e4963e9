"""Parsing of typed values (ip, time) and the number test: below both the checker, which
validates policy literals, and the runtime, which converts request values.

Representations: an ip is `(version, first, last)` as integers (an address is a
range of one); a time is float seconds since the epoch, UTC.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime

IpValue = tuple[int, int, int]


def parse_ip(text: str) -> IpValue:
    """An IPv4/IPv6 address or CIDR range; IPv4-mapped IPv6 becomes IPv4 so that
    `::ffff:10.1.2.3` cannot slip past a fence written for 10.0.0.0/8."""
    if "/" in text:
        net = ipaddress.ip_network(text, strict=True)
        mapped = getattr(net.network_address, "ipv4_mapped", None)
        if mapped is not None and net.prefixlen >= 96:
            net = ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}")
        return (net.version, int(net.network_address), int(net.broadcast_address))
    addr = ipaddress.ip_address(text)
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None:
        addr = mapped
    return (addr.version, int(addr), int(addr))


def parse_time(text: str) -> float:
    """An RFC 3339 instant (date, time and offset) as epoch seconds."""
    if len(text) < 20 or text[10] not in "Tt ":
        raise ValueError("not an RFC 3339 date-time")
    dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    if dt.tzinfo is None:
        raise ValueError("an RFC 3339 time needs an offset such as Z or +02:00")
    return dt.timestamp()


MAX_INT = 2 ** 53  # integers beyond this many are not exact as doubles (I-JSON, RFC 7493)


def is_number(v) -> bool:
    """An int within +-2**53, or a finite float, not a bool: every number is exactly a
    double (NaN would make every comparison false, and an integer beyond 2**53 would be
    compared exactly here but rounded by every JSON parser and database)."""
    t = type(v)
    return (t is int and -MAX_INT <= v <= MAX_INT) or (t is float and math.isfinite(v))


def utf8_len(s: str) -> int:
    """The size of a string in UTF-8 bytes (lone surrogates count as three)."""
    return len(s.encode("utf-8", "surrogatepass"))


def printable(text: str) -> str:
    """`text` as valid Unicode for an error message: a lone surrogate a request smuggled
    in (JSON allows `"\\ud800"`) is written as its escape, since gRPC status details,
    HTTP bodies and log lines must be UTF-8 and would fail to encode it."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def format_ip(v: IpValue) -> str:
    """The text of an ip value: an address, or a range in CIDR form (ranges are always
    prefix-aligned, since they are parsed from CIDR text)."""
    version, first, last = v
    width = 32 if version == 4 else 128
    addr = ipaddress.ip_address(first) if version == 4 else ipaddress.IPv6Address(first)
    if first == last:
        return str(addr)
    return f"{addr}/{width - (last - first).bit_length()}"


def format_time(t: float) -> str:
    """An instant as RFC 3339 in UTC, with microseconds only when it has them."""
    dt = datetime.fromtimestamp(t, UTC)
    spec = "microseconds" if dt.microsecond else "seconds"
    return dt.isoformat(timespec=spec).replace("+00:00", "Z")
