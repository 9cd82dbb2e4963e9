"""Serving: the gRPC server and its services, hot reload, workers, metrics, the decision
log and the server's own log. Upstream: the engine and the language stage."""
