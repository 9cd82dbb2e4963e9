"""A Python client for `policyd serve`: dicts in, Decisions out.

Transport failures raise `PolicydUnavailable`; callers must treat it as a deny
(see docs/server.md, "Failing closed in callers").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import grpc

from . import wire
from ._proto.policyd.v1 import policyd_pb2 as pb
from .engine.models import Decision, RequestError
from .engine.plan import Plan


class PolicydUnavailable(ConnectionError):
    """policyd could not be asked (down, unreachable, too slow, refused TLS): deny."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"policyd unavailable ({code.name}): {details}")
        self.code = code


@dataclass(frozen=True)
class ClientTLS:
    """PEM files: the CA that signed the server, and for mutual TLS our certificate and key."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(p):
            return Path(p).read_bytes() if p else None

        return grpc.ssl_channel_credentials(read(self.ca_file), read(self.key_file),
                                            read(self.cert_file))


def rpc_error(exc: grpc.RpcError) -> Exception:
    """What a failed call means to the caller: its own bad request, or policyd unreachable."""
    code, details = exc.code(), exc.details() or ""
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED):
        return RequestError(details)
    return PolicydUnavailable(code, details)


def channel_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)]


def credentials(tls: ClientTLS | bool) -> grpc.ChannelCredentials:
    return tls.credentials() if isinstance(tls, ClientTLS) else grpc.ssl_channel_credentials()


def decoded_plan(resp, msg) -> Plan:
    try:
        return wire.plan(resp, msg.resource.type, msg.action)
    except (ValueError, TypeError, KeyError) as exc:  # not a plan policyd would send
        raise PolicydUnavailable(grpc.StatusCode.DATA_LOSS,
                                 f"undecodable plan: {exc}") from None


def encode(build, *args):
    try:
        return build(*args)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise RequestError(f"cannot encode the request: {type(exc).__name__}: {exc}") from None


def batch_message(principal, items, context, dry_run, request_id,
                   principal_token="") -> pb.CheckBatchRequest:
    msg = pb.CheckBatchRequest(dry_run=dry_run, request_id=request_id,
                               principal_token=principal_token)
    if principal is not None:
        msg.principal.CopyFrom(wire.entity(principal))
    wire.with_context(msg, context)
    for item in items:
        msg.items.add(resource=wire.entity(item["resource"]), actions=item["actions"],
                      write_fields=item.get("write_fields", []))
    return msg


class DecisionClient:
    def __init__(self, target: str, timeout: float = 1.0, tls: ClientTLS | bool | None = None,
                 max_message_bytes: int = 4 * 1024 * 1024):
        options = channel_options(max_message_bytes)
        if tls:
            self._channel = grpc.secure_channel(target, credentials(tls), options=options)
        else:
            self._channel = grpc.insecure_channel(target, options=options)
        self.timeout = timeout
        self._check = self._channel.unary_unary(
            wire.CHECK, request_serializer=pb.CheckRequest.SerializeToString,
            response_deserializer=pb.CheckResponse.FromString)
        self._batch = self._channel.unary_unary(
            wire.CHECK_BATCH, request_serializer=pb.CheckBatchRequest.SerializeToString,
            response_deserializer=pb.CheckBatchResponse.FromString)
        self._plan = self._channel.unary_unary(
            wire.PLAN_RESOURCES, request_serializer=pb.PlanRequest.SerializeToString,
            response_deserializer=pb.PlanResponse.FromString)

    def check(self, request: dict, request_id: str = "", principal_token: str = "") -> Decision:
        """Decide one request; RequestError if it cannot be sent or policyd refuses it.
        With `principal_token` (a bearer JWT), leave `principal` out: policyd verifies
        the token and builds the principal from it."""
        return self.check_with_id(request, request_id, principal_token)[0]

    def check_with_id(self, request: dict, request_id: str = "",
                      principal_token: str = "") -> tuple[Decision, str]:
        """The decision and its decision_id (to find it in the decision log)."""
        msg = encode(wire.check_request, request, request_id, principal_token)
        resp = self._call(self._check, msg)
        return wire.decision(resp), resp.decision_id

    def explain(self, request: dict, request_id: str = "") -> dict:
        """As `Engine.explain`: the decision and every rule of the action, held or not,
        and why not."""
        msg = encode(wire.check_request, request, request_id)
        msg.explain = True
        resp = self._call(self._check, msg)
        return {"decision": wire.decision(resp).to_dict(),
                "rules": json.loads(resp.explanation or "[]")}

    def check_batch(self, principal: dict | None, items: list[dict],
                    context: dict | None = None, dry_run: bool = False, request_id: str = "",
                    principal_token: str = "") -> list[Decision]:
        """One decision per (item, action), in order. An item is
        {"resource": {...}, "actions": [...], "write_fields": [...]}. With
        `principal_token`, pass `principal=None`."""
        return [d for d, _ in self.check_batch_with_ids(principal, items, context, dry_run,
                                                         request_id, principal_token)]

    def check_batch_with_ids(self, principal: dict | None, items: list[dict],
                             context: dict | None = None, dry_run: bool = False,
                             request_id: str = "",
                             principal_token: str = "") -> list[tuple[Decision, str]]:
        """`check_batch` with each decision's decision_id."""
        msg = encode(batch_message, principal, items, context, dry_run, request_id,
                      principal_token)
        return [(wire.decision(r), r.decision_id)
                for r in self._call(self._batch, msg).results]

    def plan(self, request: dict, request_id: str = "") -> Plan:
        """A query plan (docs/plans.md): its residual works with `matches`, `to_sql` and
        the SQLAlchemy and Django adapters as the in-process plan's does."""
        return self.plan_with_id(request, request_id)[0]

    def plan_with_id(self, request: dict, request_id: str = "") -> tuple[Plan, str]:
        msg = encode(wire.plan_message, request, request_id)
        resp = self._call(self._plan, msg)
        return decoded_plan(resp, msg), resp.decision_id

    def _call(self, method, msg):
        try:
            return method(msg, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> DecisionClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
