"""policyd where APIs are written: one Authorizer (in process or remote, sync or async),
object mappings, response masking and write guards. Framework adapters live in
`policyd.integrations.fastapi` and `policyd.integrations.django` and are imported only
when used: importing policyd never imports a web framework (docs/integrations.md)."""

from .authorizer import AsyncAuthorizer, Authorizer
from .errors import (
    AccessRefused,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from .gate import Access, Gate
from .mapping import ModelMap
from .masking import guard_writes, visible, written_fields

__all__ = ["Access", "AccessRefused", "AsyncAuthorizer", "Authorizer", "BadRequest",
           "Forbidden", "Gate", "ModelMap", "NotFound", "RateLimited", "Unauthenticated",
           "Unavailable", "guard_writes", "visible", "written_fields"]
