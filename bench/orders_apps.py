"""The apps bench/integration_bench.py puts under uvicorn (one worker each), configured
from the environment: the example API with policyd in process or remote, and the same
routes with authorization switched off (the baseline: no token, no decision)."""

import os
from typing import Annotated

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from examples.orders_api.app import Settings, create_app
from examples.orders_api.db import Order, database

FIELDS = ("id", "status", "total", "card_last4")


def protected() -> FastAPI:
    return create_app(Settings.from_env())


def unprotected() -> FastAPI:
    _, sessions = database(os.environ["ORDERS_DATABASE_URL"])
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/orders/{order_id}")
    def read_order(order_id: str):
        with sessions() as s:
            order = s.get(Order, order_id)
        return {f: getattr(order, f) for f in FIELDS}

    @app.get("/orders")
    def list_orders(limit: Annotated[int, Query(ge=1, le=200)] = 50, after: str = ""):
        with sessions() as s:
            rows = s.scalars(select(Order).where(Order.id > after, Order.tenant == "t1")
                             .order_by(Order.id).limit(limit)).all()
        return JSONResponse({"orders": [{f: getattr(o, f) for f in FIELDS} for o in rows]})

    return app
