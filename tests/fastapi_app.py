"""A minimal FastAPI app guarded by policyd, for tests/test_integrations.py (no
`from __future__ import annotations` here: FastAPI reads these annotations live)."""

from typing import Annotated

from fastapi import Depends, FastAPI

from policyd.integrations import Access
from policyd.integrations.fastapi import Policyd


def guarded_app(authorizer, who, load, model, trust: bool) -> FastAPI:
    guard = Policyd(authorizer, authenticate=who, trust_gateway=trust)
    app = FastAPI()
    guard.install(app)
    Loaded = Annotated[Access, Depends(guard.protect(load=load))]
    Explicit = Annotated[Access, Depends(guard.protect(load=load, action="refund",
                                                       resource=model))]

    @app.get("/orders/{id}")
    async def read(access: Loaded):
        return access.visible()

    @app.post("/anything/{id}")
    async def refund(access: Explicit):
        return {"refunded": access.obj.id}

    return app
