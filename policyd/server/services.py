"""What a gRPC server is assembled from: services, each a full name and its methods.

Health and reflection list exactly the services given, so a new front door (the
Envoy authorizer, say) is one more entry in the list passed to `build_server`.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as reflection_messages

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
REFLECTION_V1ALPHA = reflection.SERVICE_NAME
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"


@dataclass(frozen=True)
class Service:
    """One gRPC service: its full name and a handler per method name."""

    name: str
    handlers: dict[str, grpc.RpcMethodHandler]

    def add_to(self, server: grpc.Server) -> None:
        # registered methods: grpc looks them up in C, not through a Python handler per call
        server.add_registered_method_handlers(self.name, self.handlers)


def add_health(server: grpc.Server, services: list[Service]) -> health.HealthServicer:
    """Health for the server ("") and each service, NOT_SERVING until the server runs."""
    servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in health_names(services):
        servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    return servicer


def health_names(services: list[Service]) -> list[str]:
    return ["", *(s.name for s in services)]


def add_reflection(server: grpc.Server, services: list[Service]) -> None:
    """Server reflection, both grpc.reflection.v1 (current grpcurl) and v1alpha. The two
    versions' messages are the same on the wire, so one servicer answers both."""
    names = (*(s.name for s in services), HEALTH, REFLECTION_V1, REFLECTION_V1ALPHA)
    servicer = reflection.ReflectionServicer(names)
    reflection.enable_server_reflection(names, server)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(REFLECTION_V1, {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_messages.ServerReflectionRequest.FromString,
            response_serializer=reflection_messages.ServerReflectionResponse.SerializeToString),
    }),))
