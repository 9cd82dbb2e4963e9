"""The orders API, protected by policyd: every route is declared in
policies/examples/orders (`routes for Order`), every caller authenticated by a JWT,
every object decided before a handler sees it, every list filtered in SQL by a plan,
every response masked by `show`, every update guarded by `write`, refunds rate limited.

    create_app(Settings(jwks="keys/jwks.json"))                    # policyd in process
    create_app(Settings(jwks=..., policyd="127.0.0.1:50051"))      # beside policyd serve
"""

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select

from policyd.authn import JwtSettings, JwtVerifier
from policyd.integrations import Access, AsyncAuthorizer, BadRequest, NotFound, guard_writes
from policyd.integrations.fastapi import Policyd, authorized_query, visible_rows

from .db import Order, Refund, database, now

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    jwks: str  # the identity provider's keys: a file, or an https:// URL
    database_url: str = "sqlite:///orders.db"
    policy: str = str(ROOT / "policies" / "examples" / "orders")
    policyd: str | None = None  # host:port of `policyd serve`; None: decide in process
    issuer: str = "https://id.example.test"
    audience: str = "orders-api"

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(jwks=env["ORDERS_JWKS"],
                   database_url=env.get("ORDERS_DATABASE_URL", cls.database_url),
                   policy=env.get("ORDERS_POLICY", cls.policy),
                   policyd=env.get("ORDERS_POLICYD") or None,
                   issuer=env.get("ORDERS_ISSUER", cls.issuer),
                   audience=env.get("ORDERS_AUDIENCE", cls.audience))


class NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    total: float = Field(ge=0)
    card_last4: str = Field(pattern=r"^[0-9]{4}$")


MAX_STRING_BYTES = 4096  # policyd's bound on a string (--max-string-bytes): never store more


def _bytes_at_most(text: str) -> str:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_STRING_BYTES:
        raise ValueError(f"at most {MAX_STRING_BYTES} bytes in UTF-8")
    return text


Notes = Annotated[str, Field(max_length=2000), AfterValidator(_bytes_at_most)]


class OrderChange(BaseModel):
    """Every field some role may write; which ones this caller may is policyd's answer.
    Each is optional, but none may be set to null (the columns hold no nulls), and text
    is bounded in bytes as policyd bounds it: a row policyd would refuse to decide would
    lock everyone out of the order."""

    model_config = ConfigDict(extra="forbid", strict=True)
    status: str | None = Field(None, pattern=r"^(new|paid|shipped|cancelled)$")
    total: float | None = Field(None, ge=0)
    internal_notes: Notes | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> "OrderChange":
        nulls = sorted(f for f in self.model_fields_set if getattr(self, f) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)}: null is not a value (leave it out)")
        return self


def authorizer(settings: Settings) -> AsyncAuthorizer:
    if settings.policyd:
        authz = AsyncAuthorizer.remote(settings.policyd, policy=settings.policy, timeout=2.0)
    else:
        authz = AsyncAuthorizer.local(settings.policy)
    authz.register(Order, "Order")  # every declared attribute, read from the same-named column
    return authz


def verifier(settings: Settings) -> JwtVerifier:
    return JwtVerifier(JwtSettings(
        issuers=[settings.issuer], audiences=[settings.audience], jwks=settings.jwks,
        principal_type="User", claims={"roles": "roles", "tenant": "tenant", "mfa": "mfa"}))


def create_app(settings: Settings) -> FastAPI:
    engine, sessions = database(settings.database_url)
    authz = authorizer(settings)
    # conceal="read": an order the caller may not read is 404 whatever it asked, as an
    # order that does not exist is (a 403 would tell another tenant it exists)
    policyd = Policyd(authz, authenticate=verifier(settings), conceal="read")
    app = FastAPI(title="orders", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.db, app.state.authorizer = engine, authz
    policyd.install(app)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):  # a body or query of the wrong shape: 400, named
        return JSONResponse({"error": "bad_request", "detail": _problems(exc.errors())}, 400)

    def load(order_id: str) -> Order | None:
        with sessions() as s:
            return s.get(Order, order_id)

    def new_order(principal: dict, body) -> Order:
        try:
            data = NewOrder.model_validate(body)
        except ValidationError as exc:
            raise BadRequest(_problems(exc.errors())) from None
        return Order(id=uuid.uuid4().hex, owner=principal["id"],
                     tenant=principal["attrs"]["tenant"], status="new", total=data.total,
                     card_last4=data.card_last4, internal_notes="", shared_with=[])

    # What each kind of route is given: a planned collection, an object to be created,
    # a loaded object (the annotations are FastAPI's dependency injection).
    Listed = Annotated[Access, Depends(policyd.protect())]
    Created = Annotated[Access, Depends(policyd.protect(new=new_order))]
    Loaded = Annotated[Access, Depends(policyd.protect(load=load))]

    @app.get("/orders")
    def list_orders(access: Listed, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    after: str = ""):
        query = select(Order).where(Order.id > after).order_by(Order.id).limit(limit)
        with sessions() as s:
            rows = s.scalars(authorized_query(query, access)).all()
        return JSONResponse({"orders": visible_rows(access, rows),  # plain JSON already
                             "next": rows[-1].id if len(rows) == limit else None})

    @app.post("/orders", status_code=201)
    def create_order(access: Created):
        with sessions.begin() as s:
            s.add(access.obj)
        return access.visible()

    @app.get("/orders/{id}")
    async def read_order(access: Loaded):
        return access.visible()

    @app.patch("/orders/{id}")
    def update_order(change: OrderChange, access: Loaded):
        fields = guard_writes(access, change)  # only what policyd decided, nothing more
        with sessions.begin() as s:
            order = s.get(Order, access.obj.id)
            for name in fields:
                setattr(order, name, getattr(change, name))
        return access.visible(order)

    @app.delete("/orders/{id}", status_code=204)
    def delete_order(access: Loaded):
        with sessions.begin() as s:
            s.delete(s.get(Order, access.obj.id))

    @app.post("/orders/{id}/refund")
    def refund(access: Loaded):
        with sessions.begin() as s:
            order = s.get(Order, access.obj.id)
            order.status = "refunded"
            s.add(Refund(order_id=order.id, by=access.principal["id"], at=now()))
        return {"id": access.obj.id, "status": "refunded"}

    # Added by someone who did not declare it: policyd refuses it (404) until
    # `routes for Order` names it. This is the shadow endpoint the inventory catches.
    @app.get("/orders/{id}/notes")
    async def order_notes(access: Loaded):
        return {"internal_notes": access.obj.internal_notes}

    # Whatever the routes above do not serve, any method: 404, as policyd answers.
    @app.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                            "OPTIONS"], include_in_schema=False)
    async def undeclared(path: str):
        raise NotFound("unknown_route", reasons=("unknown_route",))

    return app


def _problems(errors) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                     for e in errors)
