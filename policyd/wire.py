"""Conversion between the gRPC messages and the engine's request dicts and Decisions.

Struct conversion is on the hot path of every served decision: protobuf's own
helpers (`MessageToDict`, `Struct.items()`) cost 2x what the direct walk below
does, so values are read by their oneof kind. Numbers arrive as doubles.
"""

from __future__ import annotations

import json

from google.protobuf import struct_pb2
from google.protobuf.message import DecodeError

from ._proto.policyd.v1 import policyd_pb2 as pb
from .engine.models import NO_OUTPUTS, Decision, FrozenList, RequestError, make_decision
from .engine.plan import Plan
from .engine.residual import from_json

SERVICE = "policyd.v1.DecisionService"
CHECK = f"/{SERVICE}/Check"
CHECK_BATCH = f"/{SERVICE}/CheckBatch"
PLAN_RESOURCES = f"/{SERVICE}/PlanResources"


class Undecodable:
    """What the server's deserializer hands on for bytes that are not the message."""

    __slots__ = ("error",)

    def __init__(self, error: str):
        self.error = error


def safe_parser(message_type):
    """A request deserializer that never raises (grpc would log a traceback)."""

    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except (DecodeError, ValueError, TypeError) as exc:
            return Undecodable(str(exc) or type(exc).__name__)

    return parse


# ---- Struct -> Python ------------------------------------------------------------


def _value(v: struct_pb2.Value):
    kind = v.WhichOneof("kind")
    if kind == "string_value":
        return v.string_value
    if kind == "number_value":
        return v.number_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "list_value":
        return [_value(x) for x in v.list_value.values]
    if kind == "struct_value":
        return struct_dict(v.struct_value)
    return None  # null, or unset: refused by validation with the attribute's name


def struct_dict(s: struct_pb2.Struct) -> dict:
    out = {}
    for key, v in s.fields.items():
        kind = v.WhichOneof("kind")
        if kind == "string_value":
            out[key] = v.string_value
        elif kind == "bool_value":
            out[key] = v.bool_value
        elif kind == "number_value":
            out[key] = v.number_value
        else:
            out[key] = _value(v)
    return out


def json_object(data: bytes, where: str) -> dict:
    """The compact encoding: one JSON object. Anything else is the caller's bad request."""
    try:
        value = _loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise RequestError(f"{where}: not JSON ({exc})") from None
    if type(value) is not dict:
        raise RequestError(f"{where}: must be a JSON object, found {type(value).__name__}")
    return value


def attrs_dict(e: pb.Entity, where: str) -> dict:
    if e.attrs_json:
        if e.HasField("attrs"):
            raise RequestError(f"{where}: send attrs or attrs_json, not both")
        return json_object(e.attrs_json, f"{where}.attrs_json")
    return struct_dict(e.attrs)


def entity_dict(e: pb.Entity, where: str = "entity") -> dict:
    out = {"type": e.type, "id": e.id, "attrs": attrs_dict(e, where)}
    if e.parents:  # 1.2: only where sent (a set without a hierarchy refuses the key)
        out["parents"] = [{"type": p.type, "id": p.id} for p in e.parents]
    return out


def context_dict(msg) -> dict | None:
    """A request's context, from `context` or `context_json` (not both); None if neither."""
    if msg.context_json:
        if msg.HasField("context"):
            raise RequestError("send context or context_json, not both")
        return json_object(msg.context_json, "context_json")
    return struct_dict(msg.context) if msg.HasField("context") else None


def request_dict(msg: pb.CheckRequest) -> dict:
    """The engine's request dict; unset principal or resource stay absent (and are refused).
    Raises RequestError for attributes that do not decode."""
    req: dict = {"action": msg.action}
    if msg.HasField("principal"):
        req["principal"] = entity_dict(msg.principal, "principal")
    if msg.HasField("resource"):
        req["resource"] = entity_dict(msg.resource, "resource")
    context = context_dict(msg)
    if context is not None:
        req["context"] = context
    if msg.write_fields:
        req["write_fields"] = list(msg.write_fields)
    if msg.dry_run:
        req["dry_run"] = True
    return req


def batch_parts(msg: pb.CheckBatchRequest) -> tuple[dict, list[dict], dict | None]:
    """(principal, items, context) for Engine.check_batch; an unset principal is empty,
    and refused by validation like any missing attribute."""
    principal = entity_dict(msg.principal, "principal") if msg.HasField("principal") else {}
    context = context_dict(msg)
    items = [{"resource": entity_dict(item.resource, f"items[{i}].resource")
              if item.HasField("resource") else {},
              "actions": list(item.actions), "write_fields": list(item.write_fields)}
             for i, item in enumerate(msg.items)]
    return principal, items, context


# ---- Python -> messages ---------------------------------------------------------------


_WIRE = "_wire"  # a Decision's serialized CheckResponse without its decision_id
_DECISION_ID = b"\x32"  # CheckResponse.decision_id: field 6, length-delimited


def response_bytes(d: Decision, decision_id: str) -> bytes:
    """The serialized CheckResponse. A memoised Decision is the same object decision after
    decision, so its fields are serialized once and kept on it (outside its dataclass
    fields: equality and to_dict do not see it); protobuf reads concatenated fields as
    one message, so the decision_id is appended."""
    prefix = d.__dict__.get(_WIRE)
    if prefix is None:
        prefix = d.__dict__[_WIRE] = response(d, "").SerializeToString()
    raw = decision_id.encode()
    n = len(raw)
    if n < 128:
        return b"".join((prefix, _DECISION_ID, n.to_bytes(1, "little"), raw))
    return prefix + pb.CheckResponse(decision_id=decision_id).SerializeToString()


def serialized(message) -> bytes:
    """A response serializer that passes bytes made by response_bytes through."""
    return message if type(message) is bytes else message.SerializeToString()


def response(d: Decision, decision_id: str) -> pb.CheckResponse:
    return pb.CheckResponse(allowed=d.allowed, reasons=d.reasons, visible_fields=d.visible_fields,
                            retry_after=d.retry_after, policy_version=d.policy_version,
                            decision_id=decision_id, warnings=d.warnings,
                            outputs_json=_dumps(d.outputs) if d.outputs else "")


def decision(r: pb.CheckResponse) -> Decision:
    outputs = json.loads(r.outputs_json) if r.outputs_json else NO_OUTPUTS
    return make_decision(r.allowed, FrozenList(r.reasons), FrozenList(r.visible_fields),
                         r.retry_after, r.policy_version, FrozenList(r.warnings), outputs)


def _plain(value):
    """Python sets and tuples travel as lists (sorted for sets: a stable message)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, tuple):
        return list(value)
    return value


def struct(values: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if values:
        s.update({k: _plain(v) for k, v in values.items()})
    return s


def _json_default(value):
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not an attribute value")


_dumps = json.JSONEncoder(separators=(",", ":"), default=_json_default).encode
_scan = json.JSONDecoder().scan_once  # the C scanner itself: json.loads costs twice as much
_SPACE = " \t\n\r"


def _loads(data: bytes):
    text = data.decode()
    if text[:1] in _SPACE:  # leading whitespace (or nothing): the scanner does not skip it
        return json.loads(text)
    try:
        value, end = _scan(text, 0)
    except StopIteration as exc:
        raise ValueError(f"no JSON value at character {exc.value}") from None
    if end != len(text) and text[end:].strip(_SPACE):
        raise ValueError(f"extra data at character {end}")
    return value


def json_bytes(values: dict) -> bytes:
    """Attributes in the compact encoding (sets as sorted lists, like Struct's)."""
    return _dumps(values).encode()


def entity(e: dict, compact: bool = True) -> pb.Entity:
    """An Entity message: attributes as attrs_json (compact) or as a Struct."""
    attrs = e.get("attrs")
    parents = [pb.EntityRef(type=p.get("type", ""), id=p.get("id", ""))
               for p in e.get("parents") or ()]
    if compact:
        return pb.Entity(type=e.get("type", ""), id=e.get("id", ""),
                         attrs_json=json_bytes(attrs) if attrs else b"", parents=parents)
    return pb.Entity(type=e.get("type", ""), id=e.get("id", ""), attrs=struct(attrs),
                     parents=parents)


def with_context(msg, context: dict | None, compact: bool = True) -> None:
    """Set a request message's context (None: leave it unset)."""
    if context is not None:
        if compact and context:
            msg.context_json = json_bytes(context)
        else:
            msg.context.CopyFrom(struct(context))


def check_request(req: dict, request_id: str = "", principal_token: str = "",
                  compact: bool = True) -> pb.CheckRequest:
    msg = pb.CheckRequest(action=req.get("action", ""), write_fields=req.get("write_fields") or [],
                          dry_run=bool(req.get("dry_run", False)), request_id=request_id,
                          principal_token=principal_token)
    if "principal" in req:
        msg.principal.CopyFrom(entity(req["principal"], compact))
    if "resource" in req:
        msg.resource.CopyFrom(entity(req["resource"], compact))
    with_context(msg, req.get("context"), compact)
    return msg


# ---- query plans -------------------------------------------------------------------

_KINDS = {"always_allowed": pb.PlanResponse.ALWAYS_ALLOWED,
          "always_denied": pb.PlanResponse.ALWAYS_DENIED,
          "conditional": pb.PlanResponse.CONDITIONAL}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}


def plan_request_dict(msg: pb.PlanRequest) -> dict:
    """Engine.plan's request: the resource's id only when given, its attrs only if any."""
    req: dict = {"action": msg.action}
    if msg.HasField("principal"):
        req["principal"] = entity_dict(msg.principal, "principal")
    if msg.HasField("resource"):
        r = msg.resource
        req["resource"] = {"type": r.type}
        if r.id:
            req["resource"]["id"] = r.id
        attrs = attrs_dict(r, "resource")
        if attrs:
            req["resource"]["attrs"] = attrs
    context = context_dict(msg)
    if context is not None:
        req["context"] = context
    return req


def _operand(node: dict, out: pb.Operand) -> None:
    if "attr" in node:
        out.attribute, out.type = node["attr"], node["type"]
    elif "value" in node:
        out.value.CopyFrom(struct({"v": node["value"]}).fields["v"])
        out.type = node["type"]
    else:
        expression(node, out.expression)


def expression(node: dict, out: pb.Expression | None = None) -> pb.Expression:
    """A plan's JSON condition tree as an Expression message."""
    out = pb.Expression() if out is None else out
    out.operator = node["op"]
    for arg in node["args"]:
        _operand(arg, out.operands.add())
    return out


def condition_tree(msg: pb.Expression) -> dict:
    """An Expression message as the JSON condition tree."""
    args = []
    for o in msg.operands:
        kind = o.WhichOneof("kind")
        if kind == "attribute":
            args.append({"attr": o.attribute, "type": o.type})
        elif kind == "value":
            args.append({"value": _value(o.value), "type": o.type})
        else:
            args.append(condition_tree(o.expression))
    return {"op": msg.operator, "args": args}


def plan_response(plan, decision_id: str) -> pb.PlanResponse:
    out = pb.PlanResponse(kind=_KINDS[plan.kind], reasons=plan.reasons,
                          policy_version=plan.policy_version, decision_id=decision_id,
                          warnings=plan.warnings)
    if plan.condition is not None:
        expression(plan.condition, out.condition)
    for name, when in plan.visible_fields.items():
        out.visible_fields.append(name)
        if when is not True:
            expression(when, out.conditional_fields[name])
    return out


def plan_message(req: dict, request_id: str = "", compact: bool = True) -> pb.PlanRequest:
    msg = pb.PlanRequest(action=req.get("action", ""), request_id=request_id)
    if "principal" in req:
        msg.principal.CopyFrom(entity(req["principal"], compact))
    if "resource" in req:
        msg.resource.CopyFrom(entity(req["resource"], compact))
    with_context(msg, req.get("context"), compact)
    return msg


def plan(resp: pb.PlanResponse, resource_type: str = "", action: str = "") -> Plan:
    """The engine's Plan from a response: its residual usable by to_sql and matches."""
    conditional = resp.conditional_fields
    visible = {name: from_json(condition_tree(conditional[name])) if name in conditional
               else True for name in resp.visible_fields}
    residual = from_json(condition_tree(resp.condition)) if resp.HasField("condition") \
        else None
    return Plan(_KIND_NAMES.get(resp.kind, "always_denied"), residual, visible,
                tuple(resp.reasons), resp.policy_version, resource_type, action,
                tuple(resp.warnings))
