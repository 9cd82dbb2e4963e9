"""What the gateway may believe about an HTTP request: its headers, each with every value
it was sent with, and the client's address by the trusted-hops rule.

Envoy joins a header sent more than once into one value with commas, unless
ext_authz's `encode_raw_headers` is on; then each value arrives on its own. A header
that feeds a decision (a context attribute, the bearer token) must have one value:
two `x-country` headers joined as "FR,KP" would slip past a rule that denies "KP".

X-Forwarded-For is written left to right: every proxy appends the address it saw, so
only the entries the trusted proxies wrote can be believed, counted from the right;
whatever a client wrote itself is to the left of them (Envoy's own xff_num_trusted_hops).
"""

from __future__ import annotations

from ..engine.models import RequestError


class Headers:
    """A request's headers by lower-case name, each with the list of its values."""

    def __init__(self, values: dict[str, list[str]], raw: bool):
        self.values, self.raw = values, raw

    @classmethod
    def of(cls, http) -> Headers:
        """From Envoy's AttributeContext.HttpRequest: `header_map` (raw, repeats kept)
        when Envoy sends it, else the joined `headers` map."""
        found: dict[str, list[str]] = {}
        if len(http.header_map.headers):
            for h in http.header_map.headers:
                value = h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value
                found.setdefault(h.key.lower(), []).append(value)
            return cls(found, True)
        for key, value in http.headers.items():
            found.setdefault(key.lower(), []).append(value)
        return cls(found, False)

    def first(self) -> dict[str, str]:
        """One value per name (the first), for what does not decide: ids, prefixes."""
        return {k: v[0] for k, v in self.values.items()}

    def single(self, name: str) -> str | None:
        """The one value of a header that feeds a decision; a RequestError when it was sent
        more than once (or, joined by Envoy, holds a comma that may join two)."""
        values = self.values.get(name.lower())
        if values is None:
            return None
        if len(values) > 1:
            raise RequestError(f"header `{name}` was sent {len(values)} times; a header that "
                               "decides must be sent once")
        if not self.raw and "," in values[0]:
            raise RequestError(f"header `{name}` holds a comma: Envoy joins a header sent "
                               "more than once with commas, so it is refused (set "
                               "encode_raw_headers on ext_authz to tell them apart)")
        return values[0]

    def entries(self, name: str) -> list[str]:
        """A list-valued header's entries, every value and every comma-separated item, in
        the order they were written (RFC 9110: repeats and commas mean the same)."""
        return [item.strip() for value in self.values.get(name.lower(), ())
                for item in value.split(",")]


def client_address(headers: Headers, peer: str, hops: int, header: str) -> str:
    """The client's address: with no trusted hops the address Envoy itself saw (`peer`);
    with N, the Nth address from the right of `header` once the address Envoy saw is
    the last one (Envoy appends it under use_remote_address, and the last proxy's is
    that address). Fewer addresses than hops: the peer, as Envoy falls back."""
    if hops == 0:
        return peer
    chain = headers.entries(header)
    if not chain or chain[-1] != peer:
        chain.append(peer)
    if len(chain) <= hops:
        return peer
    found = chain[-(hops + 1)]
    if not found:
        raise RequestError(f"header `{header}` has an empty address among the trusted hops")
    return found
