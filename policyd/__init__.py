"""policyd: policy-as-code authorization for APIs.

The public names are documented in docs/api.md.
"""

from .compiler import PolicySet, compile_path, compile_text
from .diagnostics import Diagnostic, PolicyError
from .engine import Engine
from .models import CheckRequest, Decision, Entity, RequestError

__all__ = [
    "CheckRequest", "Decision", "Diagnostic", "Engine", "Entity", "PolicyError", "PolicySet",
    "RequestError", "compile_path", "compile_text",
]
__version__ = "0.1.0"
