from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Entity(_message.Message):
    __slots__ = ("type", "id", "attrs", "attrs_json", "parents")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    ATTRS_JSON_FIELD_NUMBER: _ClassVar[int]
    PARENTS_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    attrs: _struct_pb2.Struct
    attrs_json: bytes
    parents: _containers.RepeatedCompositeFieldContainer[EntityRef]
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ..., attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., attrs_json: _Optional[bytes] = ..., parents: _Optional[_Iterable[_Union[EntityRef, _Mapping]]] = ...) -> None: ...

class EntityRef(_message.Message):
    __slots__ = ("type", "id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("principal", "action", "resource", "context", "write_fields", "dry_run", "request_id", "principal_token", "explain", "context_json")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    principal: Entity
    action: str
    resource: Entity
    context: _struct_pb2.Struct
    write_fields: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    request_id: str
    principal_token: str
    explain: bool
    context_json: bytes
    def __init__(self, principal: _Optional[_Union[Entity, _Mapping]] = ..., action: _Optional[str] = ..., resource: _Optional[_Union[Entity, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., write_fields: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., request_id: _Optional[str] = ..., principal_token: _Optional[str] = ..., explain: _Optional[bool] = ..., context_json: _Optional[bytes] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "reasons", "visible_fields", "retry_after", "policy_version", "decision_id", "warnings", "explanation", "outputs_json")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    visible_fields: _containers.RepeatedScalarFieldContainer[str]
    retry_after: float
    policy_version: str
    decision_id: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    explanation: str
    outputs_json: str
    def __init__(self, allowed: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., visible_fields: _Optional[_Iterable[str]] = ..., retry_after: _Optional[float] = ..., policy_version: _Optional[str] = ..., decision_id: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., explanation: _Optional[str] = ..., outputs_json: _Optional[str] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("resource", "actions", "write_fields")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    resource: Entity
    actions: _containers.RepeatedScalarFieldContainer[str]
    write_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resource: _Optional[_Union[Entity, _Mapping]] = ..., actions: _Optional[_Iterable[str]] = ..., write_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckBatchRequest(_message.Message):
    __slots__ = ("principal", "items", "context", "dry_run", "request_id", "principal_token", "context_json")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    principal: Entity
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    context: _struct_pb2.Struct
    dry_run: bool
    request_id: str
    principal_token: str
    context_json: bytes
    def __init__(self, principal: _Optional[_Union[Entity, _Mapping]] = ..., items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., dry_run: _Optional[bool] = ..., request_id: _Optional[str] = ..., principal_token: _Optional[str] = ..., context_json: _Optional[bytes] = ...) -> None: ...

class CheckBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CheckResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[CheckResponse, _Mapping]]] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("principal", "action", "resource", "context", "request_id", "context_json")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    principal: Entity
    action: str
    resource: Entity
    context: _struct_pb2.Struct
    request_id: str
    context_json: bytes
    def __init__(self, principal: _Optional[_Union[Entity, _Mapping]] = ..., action: _Optional[str] = ..., resource: _Optional[_Union[Entity, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., request_id: _Optional[str] = ..., context_json: _Optional[bytes] = ...) -> None: ...

class Operand(_message.Message):
    __slots__ = ("value", "attribute", "expression", "type")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTE_FIELD_NUMBER: _ClassVar[int]
    EXPRESSION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    value: _struct_pb2.Value
    attribute: str
    expression: Expression
    type: str
    def __init__(self, value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., attribute: _Optional[str] = ..., expression: _Optional[_Union[Expression, _Mapping]] = ..., type: _Optional[str] = ...) -> None: ...

class Expression(_message.Message):
    __slots__ = ("operator", "operands")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    OPERANDS_FIELD_NUMBER: _ClassVar[int]
    operator: str
    operands: _containers.RepeatedCompositeFieldContainer[Operand]
    def __init__(self, operator: _Optional[str] = ..., operands: _Optional[_Iterable[_Union[Operand, _Mapping]]] = ...) -> None: ...

class PlanResponse(_message.Message):
    __slots__ = ("kind", "condition", "visible_fields", "conditional_fields", "reasons", "policy_version", "decision_id", "warnings")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[PlanResponse.Kind]
        ALWAYS_ALLOWED: _ClassVar[PlanResponse.Kind]
        ALWAYS_DENIED: _ClassVar[PlanResponse.Kind]
        CONDITIONAL: _ClassVar[PlanResponse.Kind]
    KIND_UNSPECIFIED: PlanResponse.Kind
    ALWAYS_ALLOWED: PlanResponse.Kind
    ALWAYS_DENIED: PlanResponse.Kind
    CONDITIONAL: PlanResponse.Kind
    class ConditionalFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Expression
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Expression, _Mapping]] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    kind: PlanResponse.Kind
    condition: Expression
    visible_fields: _containers.RepeatedScalarFieldContainer[str]
    conditional_fields: _containers.MessageMap[str, Expression]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    policy_version: str
    decision_id: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[PlanResponse.Kind, str]] = ..., condition: _Optional[_Union[Expression, _Mapping]] = ..., visible_fields: _Optional[_Iterable[str]] = ..., conditional_fields: _Optional[_Mapping[str, Expression]] = ..., reasons: _Optional[_Iterable[str]] = ..., policy_version: _Optional[str] = ..., decision_id: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
