"""The serve configuration checked against the set it serves: every type and attribute a
key names must be declared, and every principal a gateway builds must be able to pass
validation. A mistake here would otherwise start a server that refuses every caller,
with the cause only in the decision log.
"""

from __future__ import annotations

from ..language.diagnostics import did_you_mean
from ..language.schema import Schema
from .config import ServeConfig

_GATEWAY_CONTEXT = ("ip", "time")  # set by the gateway itself, never from a header


def schema_problems(cfg: ServeConfig, schema: Schema) -> list[str]:
    """Each problem as `key: what is wrong (what is declared)`; empty when all fit."""
    out: list[str] = []
    jwt, mtls = cfg.authn.jwt, cfg.authn.mtls
    if jwt is not None:
        principal = _principal_type(schema, "authn.jwt.principal_type", jwt.principal_type, out)
        if principal is not None:
            out.extend(_claims(principal, jwt.claims))
    if mtls is not None:
        principal = _principal_type(schema, "authn.mtls.principal_type", mtls.principal_type,
                                    out)
        if principal is not None:
            required = _required(principal)
            if required:
                out.append(f"authn.mtls.principal_type: an mTLS caller has only an id, and "
                           f"principal `{principal.name}` requires {_names(required)}")
    out.extend(_context_headers(schema, cfg.envoy.context_headers))
    for name, declared in cfg.authzen.types.items():
        if declared not in schema.principals and declared not in schema.resources:
            known = [*schema.principals, *schema.resources]
            out.append(f"authzen.types.{name}: `{declared}` is not a declared principal or "
                       f"resource type (declared: {', '.join(known) or 'none'})"
                       + _hint(declared, known))
    return out


def _principal_type(schema: Schema, key: str, name: str, out: list):
    found = schema.principals.get(name)
    if found is None:
        known = list(schema.principals)
        out.append(f"{key}: `{name}` is not a declared principal type (declared: "
                   f"{', '.join(known) or 'none'})" + _hint(name, known))
    return found


def _required(principal) -> list[str]:
    """The attributes a request must send for this type: required and not stored."""
    return [a.name for a in principal.attrs if not a.optional and not a.stored]


def _claims(principal, claims: dict[str, str]) -> list[str]:
    out = []
    for attr in claims:
        spec = principal.by_name.get(attr)
        if spec is None:
            known = [a.name for a in principal.attrs]
            out.append(f"authn.jwt.claims.{attr}: principal `{principal.name}` declares no "
                       f"attribute `{attr}` (declared: {', '.join(known) or 'none'})"
                       + _hint(attr, known))
        elif spec.stored:
            out.append(f"authn.jwt.claims.{attr}: `{principal.name}.{attr}` is stored: it "
                       "comes from the set's entity data, never from a token")
    missing = [a for a in _required(principal) if a not in claims]
    if missing:
        out.append(f"authn.jwt.claims: principal `{principal.name}` requires {_names(missing)}, "
                   "and no claim is mapped to "
                   f"{'it' if len(missing) == 1 else 'them'} (every token would be refused); "
                   f"map each, as `{missing[0]} = \"CLAIM\"`")
    return out


def _context_headers(schema: Schema, headers: dict[str, str]) -> list[str]:
    out = []
    declared = schema.context.by_name if schema.context is not None else {}
    for name in headers:
        if name in _GATEWAY_CONTEXT and name in declared:
            out.append(f"envoy.context_headers.{name}: context.{name} is set by the gateway "
                       "(the address Envoy saw, the request's time), never from a header")
        elif name not in declared:
            out.append(f"envoy.context_headers.{name}: the context declares no attribute "
                       f"`{name}` (declared: {', '.join(declared) or 'none'})"
                       + _hint(name, list(declared)))
    return out


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _hint(name: str, known: list[str]) -> str:
    hint = did_you_mean(name, known)
    return f"; {hint}" if hint else ""
