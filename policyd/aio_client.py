"""`DecisionClient` for asyncio services, on `grpc.aio`: the same requests, decisions,
plans and errors, awaited. Transport failures raise `PolicydUnavailable`: deny."""

from __future__ import annotations

import json

import grpc

from . import wire
from ._proto.policyd.v1 import policyd_pb2 as pb
from .client import (
    ClientTLS,
    batch_message,
    channel_options,
    credentials,
    decoded_plan,
    encode,
    rpc_error,
)
from .engine.models import Decision
from .engine.plan import Plan


class AsyncDecisionClient:
    def __init__(self, target: str, timeout: float = 1.0, tls: ClientTLS | bool | None = None,
                 max_message_bytes: int = 4 * 1024 * 1024):
        self.target, self.timeout, self._tls = target, timeout, tls
        self._options = channel_options(max_message_bytes)
        self._channel = None  # opened on first use, on the loop that uses it

    def _open(self) -> None:
        options = self._options
        self._channel = grpc.aio.secure_channel(self.target, credentials(self._tls),
                                                options=options) \
            if self._tls else grpc.aio.insecure_channel(self.target, options=options)

        def method(path, request, response):
            return self._channel.unary_unary(path, request_serializer=request.SerializeToString,
                                             response_deserializer=response.FromString)
        self._check = method(wire.CHECK, pb.CheckRequest, pb.CheckResponse)
        self._batch = method(wire.CHECK_BATCH, pb.CheckBatchRequest, pb.CheckBatchResponse)
        self._plan = method(wire.PLAN_RESOURCES, pb.PlanRequest, pb.PlanResponse)

    async def check(self, request: dict, request_id: str = "",
                    principal_token: str = "") -> Decision:
        return (await self.check_with_id(request, request_id, principal_token))[0]

    async def check_with_id(self, request: dict, request_id: str = "",
                            principal_token: str = "") -> tuple[Decision, str]:
        msg = encode(wire.check_request, request, request_id, principal_token)
        resp = await self._call("_check", msg)
        return wire.decision(resp), resp.decision_id

    async def explain(self, request: dict, request_id: str = "") -> dict:
        msg = encode(wire.check_request, request, request_id)
        msg.explain = True
        resp = await self._call("_check", msg)
        return {"decision": wire.decision(resp).to_dict(),
                "rules": json.loads(resp.explanation or "[]")}

    async def check_batch(self, principal: dict | None, items: list[dict],
                          context: dict | None = None, dry_run: bool = False,
                          request_id: str = "", principal_token: str = "") -> list[Decision]:
        msg = encode(batch_message, principal, items, context, dry_run, request_id,
                     principal_token)
        return [wire.decision(r) for r in (await self._call("_batch", msg)).results]

    async def plan(self, request: dict, request_id: str = "") -> Plan:
        return (await self.plan_with_id(request, request_id))[0]

    async def plan_with_id(self, request: dict, request_id: str = "") -> tuple[Plan, str]:
        msg = encode(wire.plan_message, request, request_id)
        resp = await self._call("_plan", msg)
        return decoded_plan(resp, msg), resp.decision_id

    async def _call(self, name: str, msg):
        if self._channel is None:
            self._open()
        try:
            return await getattr(self, name)(msg, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def __aenter__(self) -> AsyncDecisionClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
