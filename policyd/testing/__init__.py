"""The policy test runner: `*.test.policy` files parsed, checked against their set,
run on an engine, and reported (text, JSON, JUnit) or collected by pytest."""

from .runner import Coverage, Failure, Runner, TestResult
from .suite import SetSource, Suite, discover, load

__all__ = ["Coverage", "Failure", "Runner", "SetSource", "Suite", "TestResult", "discover",
           "load"]
