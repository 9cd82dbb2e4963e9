from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Entity(_message.Message):
    __slots__ = ("type", "id", "attrs")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ATTRS_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    attrs: _struct_pb2.Struct
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ..., attrs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("principal", "action", "resource", "context", "write_fields", "dry_run", "request_id")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WRITE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    principal: Entity
    action: str
    resource: Entity
    context: _struct_pb2.Struct
    write_fields: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    request_id: str
    def __init__(self, principal: _Optional[_Union[Entity, _Mapping]] = ..., action: _Optional[str] = ..., resource: _Optional[_Union[Entity, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., write_fields: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("allowed", "reasons", "visible_fields", "retry_after", "policy_version", "decision_id", "warnings")
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    VISIBLE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    allowed: bool
    reasons: _containers.RepeatedScalarFieldContainer[str]
    visible_fields: _containers.RepeatedScalarFieldContainer[str]
    retry_after: float
    policy_version: str
    decision_id: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, allowed: _Optional[bool] = ..., reasons: _Optional[_Iterable[str]] = ..., visible_fields: _Optional[_Iterable[str]] = ..., retry_after: _Optional[float] = ..., policy_version: _Optional[str] = ..., decision_id: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("principal", "items", "context", "dry_run", "request_id")
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    principal: Entity
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    context: _struct_pb2.Struct
    dry_run: bool
    request_id: str
    def __init__(self, principal: _Optional[_Union[Entity, _Mapping]] = ..., items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., dry_run: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class CheckBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CheckResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[CheckResponse, _Mapping]]] = ...) -> None: ...
