"""Envoy's external authorization (`envoy.service.auth.v3.Authorization/Check`): policyd
at the gateway, in front of every service.

Per request: authenticate (a bearer JWT, the payload Envoy's jwt_authn verified, or an
mTLS peer), match the route (none: 404 `unknown_route`), decide by plan with what the
route gives (engine.gateway), and answer: 401, 403, 404, 429 with Retry-After, or OK
with `x-policyd-*` headers for the service (any a client sent are removed first).
Denied bodies carry a code and the decision id, never rule names or values.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2 as ea
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2

from .. import wire
from ..authn import JwtVerifier, TokenError, bearer
from ..engine import Engine
from ..engine.gateway import ALLOWED, CONDITIONAL, LIMITED
from ..engine.models import RequestError
from .config import EnvoySettings
from .forwarded import Headers, client_address
from .services import Service

log = logging.getLogger("policyd.envoy")
SERVICE = "envoy.service.auth.v3.Authorization"
PREFIX = "x-policyd-"
_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_JWT_FILTER = "envoy.filters.http.jwt_authn"
_HEADER_SAFE = re.compile(r"[!-~](?:[ -~]{0,8190}[!-~])?")  # no control bytes, no edge space


class EnvoyAuthorizer:
    def __init__(self, engine: Engine, settings: EnvoySettings,
                 verifier: JwtVerifier | None = None, mtls_type: str | None = None,
                 trust_jwt_metadata: bool = False, jwt_metadata_key: str = "jwt_payload",
                 metrics=None):
        self.engine, self.settings, self.verifier = engine, settings, verifier
        self.mtls_type, self.metrics = mtls_type, metrics
        self.trust_jwt_metadata, self.jwt_metadata_key = trust_jwt_metadata, jwt_metadata_key
        self._logged: set[str] = set()

    def check(self, req, context: grpc.ServicerContext) -> ea.CheckResponse:
        if isinstance(req, wire.Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a CheckRequest: {req.error}")
        try:
            return self._check(req)
        except Exception as exc:  # fail closed: deny, log the kind once, never forward
            key = type(exc).__name__
            if key not in self._logged:
                self._logged.add(key)
                log.error("gateway decision failed closed: %s: %s", key, exc)
            return _denied(403, "forbidden", self.engine.ids())

    def _check(self, req) -> ea.CheckResponse:
        attrs = req.attributes
        http = attrs.request.http
        sent = Headers.of(http)
        headers = sent.first()
        peer = attrs.source.address.socket_address.address
        path, method = http.path.split("?", 1)[0].split("#", 1)[0], http.method
        extra = {"gateway": "envoy", "method": method, "path": path}
        request_id = headers.get("x-request-id", http.id)
        try:
            principal = self._principal(attrs, sent)
        except TokenError as exc:
            return self._refuse(401, "unauthenticated" if exc.missing else "invalid_token",
                                str(exc), extra, request_id, peer, challenge=True,
                                invalid=not exc.missing)
        match = self.engine.policy_set.routes.match(method, path)
        if match is None:
            return self._refuse(404, "not_found", "unknown_route", extra, request_id, peer,
                                principal=principal)
        resource = {"type": match.resource}
        if match.id is not None:
            resource["id"] = match.id
        if match.attrs:
            resource["attrs"] = dict(match.attrs)
        extra["route"] = f"{match.route.method} {match.route.template}"
        try:
            context = self._context(attrs, sent, peer)
        except RequestError as exc:  # a repeated header, a forged hop chain: never decided
            return self._refuse(400, "bad_request", f"request_error: {exc}", extra,
                                request_id, peer, principal=principal)
        request = {"principal": principal, "action": match.action, "resource": resource,
                   "context": context}
        try:
            found, decision_id = self.engine.decide_gateway(
                request, request_id=request_id, peer=peer, extra=extra)
        except RequestError as exc:  # claims that do not fit the principal: not forwarded
            to_caller = str(exc).startswith("principal")
            return self._refuse(401 if to_caller else 400,
                                "invalid_token" if to_caller else "bad_request",
                                f"request_error: {exc}", extra, request_id, peer,
                                principal=principal, challenge=to_caller,
                                invalid=to_caller)
        self._count(found.verdict)
        if found.verdict == LIMITED:
            return _denied(429, "rate_limited", decision_id,
                           {"retry-after": str(max(1, round(found.retry_after + 0.499)))})
        if found.verdict not in (ALLOWED, CONDITIONAL):
            return _denied(403, "forbidden", decision_id)
        return self._forward(found, decision_id, principal, headers)

    # ---- who is calling ----------------------------------------------------------------

    def _principal(self, attrs, sent: Headers) -> dict:
        if self.verifier is not None and self.trust_jwt_metadata:
            meta = attrs.metadata_context.filter_metadata.get(_JWT_FILTER)
            payload = meta.fields.get(self.jwt_metadata_key) if meta is not None else None
            if payload is None or not payload.HasField("struct_value"):
                raise TokenError("no verified JWT payload in Envoy's metadata", missing=True)
            return self.verifier.principal(wire.struct_dict(payload.struct_value))
        authorization = sent.values.get("authorization")
        if authorization is not None or self.mtls_type is None or \
                not attrs.source.principal:
            if self.verifier is None:
                raise TokenError("no [authn.jwt] is configured", missing=True)
            if authorization is not None and len(authorization) > 1:
                raise TokenError("more than one Authorization header")
            return self.verifier.verify(bearer(authorization[0] if authorization else None))
        return {"type": self.mtls_type, "id": attrs.source.principal}

    def _context(self, attrs, sent: Headers, peer: str) -> dict:
        """The declared context from what Envoy vouches for: the client address by the
        trusted-hops rule, the request time, and `context_headers` sent once each."""
        schema = self.engine.policy_set.schema.context
        if schema is None:
            return {}
        out: dict = {}
        spec = schema.by_name
        settings = self.settings
        if "ip" in spec and spec["ip"].type == "ip":
            ip = client_address(sent, peer, settings.xff_num_trusted_hops,
                                settings.ip_header or "x-forwarded-for")
            if ip:
                out["ip"] = ip
        if "time" in spec and spec["time"].type == "time" and attrs.request.HasField("time"):
            t = attrs.request.time
            out["time"] = datetime.fromtimestamp(t.seconds + t.nanos / 1e9, UTC) \
                .isoformat().replace("+00:00", "Z")
        for name, header in settings.context_headers.items():
            value = sent.single(header) if name in spec else None
            if value is not None:
                out[name] = _typed(spec[name].type, value)
        return out

    # ---- answers -------------------------------------------------------------------------

    def _forward(self, found, decision_id: str, principal: dict, headers: dict):
        decision = "allowed" if found.verdict == ALLOWED else "conditional"
        add = {"decision-id": decision_id, "decision": decision,
               "principal-id": principal["id"], "principal-type": principal["type"]}
        if found.verdict == ALLOWED:
            add["visible-fields"] = ",".join(f for f, v in found.plan.visible.items()
                                             if v is True)
            add.update(output_headers(found.outputs))
        out = ea.CheckResponse()  # built in place: a made message would be copied in
        out.status.code = code_pb2.OK
        ok = out.ok_response
        for k, v in add.items():
            option = ok.headers.add()
            option.header.key, option.header.value = PREFIX + k, v
            option.append_action = _OVERWRITE
        # Envoy removes after it adds: the ones set here overwrite, the rest go
        ok.headers_to_remove.extend(sorted(h for h in headers if h.startswith(PREFIX)
                                           and h[len(PREFIX):] not in add))
        fields = out.dynamic_metadata.fields
        fields["decision_id"].string_value = decision_id
        fields["decision"].string_value = decision
        rules = fields["rules"].list_value
        rules.SetInParent()
        for rule in found.reasons:
            rules.values.add().string_value = rule
        who = fields["principal"].struct_value.fields
        who["type"].string_value, who["id"].string_value = principal["type"], principal["id"]
        if found.outputs:  # 1.2: typed, per deciding rule
            fields["outputs"].struct_value.update(found.outputs)
        return out

    def _refuse(self, status: int, code: str, reason: str, extra: dict, request_id: str,
                peer: str, principal: dict | None = None, challenge: bool = False,
                invalid: bool = False):
        request = {"principal": principal} if principal else None
        _, decision_id = self.engine.decide_gateway(
            request, refusal=reason, request_id=request_id, peer=peer,
            extra={**extra, "http_status": status})
        self._count("denied")
        more = {}
        if challenge:  # RFC 6750: a 401 names the scheme, and says when a token was bad
            more["www-authenticate"] = 'Bearer error="invalid_token"' if invalid else "Bearer"
        return _denied(status, code, decision_id, more)

    def _count(self, verdict: str) -> None:
        if self.metrics is not None:
            self.metrics.gateway(verdict)


def output_headers(outputs: dict) -> dict:
    """`output-KEY` headers (KEY as written, lower case) from a decision's outputs: a string as itself when
    it is printable ASCII, any other value as JSON; the first rule in source order wins a
    key several rules give. A string a header cannot carry stays in the metadata only."""
    out: dict = {}
    for values in outputs.values():
        for key, value in values.items():
            name = "output-" + key.lower()
            if name in out:
                continue
            if type(value) is str:
                if _HEADER_SAFE.fullmatch(value):
                    out[name] = value
            else:
                text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
                if len(text) <= 8192:
                    out[name] = text
    return out


def _typed(t: str, value: str):
    """A header's text as the declared context type (validation names what is wrong)."""
    if t == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if t == "bool":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value


def _denied(status: int, code: str, decision_id: str, headers: dict | None = None):
    body = json.dumps({"error": code, "decision_id": decision_id})
    options = [base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=k, value=v),
                                          append_action=_OVERWRITE)
               for k, v in {"content-type": "application/json", **(headers or {})}.items()]
    rpc = code_pb2.UNAUTHENTICATED if status == 401 else code_pb2.PERMISSION_DENIED
    return ea.CheckResponse(
        status=status_pb2.Status(code=rpc),
        denied_response=ea.DeniedHttpResponse(status=http_status_pb2.HttpStatus(code=status),
                                              headers=options, body=body))


def envoy_service(engine: Engine, settings: EnvoySettings, authn,
                  verifier: JwtVerifier | None = None, metrics=None) -> Service:
    """The Authorization service, with the verifier of [authn.jwt] (shared with Check)."""
    jwt_settings = authn.jwt
    authorizer = EnvoyAuthorizer(
        engine, settings, verifier, authn.mtls.principal_type if authn.mtls else None,
        bool(jwt_settings and jwt_settings.trust_envoy_jwt_metadata),
        jwt_settings.envoy_jwt_metadata_key if jwt_settings else "jwt_payload", metrics)
    return Service(SERVICE, {"Check": grpc.unary_unary_rpc_method_handler(
        authorizer.check, request_deserializer=wire.safe_parser(ea.CheckRequest),
        response_serializer=ea.CheckResponse.SerializeToString)})
