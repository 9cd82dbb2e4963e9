"""policyd: policy-as-code authorization for APIs.

The public names are documented in docs/api.md.
"""

from .engine import Engine
from .engine.compiler import PolicySet, compile_path, compile_text
from .engine.models import CheckRequest, Decision, Entity, RequestError
from .integrations import AsyncAuthorizer, Authorizer
from .language.diagnostics import Diagnostic, PolicyError

__all__ = [
    "AsyncAuthorizer", "Authorizer", "CheckRequest", "Decision", "Diagnostic", "Engine", "Entity", "PolicyError", "PolicySet",
    "RequestError", "compile_path", "compile_text",
]
__version__ = "0.1.0"
