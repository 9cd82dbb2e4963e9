"""Deciding: the compiled policy set, the engine, request validation, rate limiting and
decision records. Upstream: the language stage only."""

from .engine import Engine

__all__ = ["Engine"]
