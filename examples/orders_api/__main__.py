"""`python -m examples.orders_api`: the API on http://127.0.0.1:8000 with a seeded
SQLite database and development tokens printed (README.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from .app import Settings, create_app
from .db import database, seed
from .dev import USERS, DevIssuer


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.orders_api")
    parser.add_argument("--policyd", help="host:port of `policyd serve` (default: in process)")
    parser.add_argument("--database", default="sqlite:///orders.db")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--keys", default=".orders-dev-keys", help="where the dev keys live")
    parser.add_argument("--token", metavar="USER", choices=sorted(USERS),
                        help="print a development token for USER and exit "
                             "(`export ALICE=$(python -m examples.orders_api --token alice)`)")
    args = parser.parse_args()
    issuer = DevIssuer(Path(args.keys))
    if args.token:
        print(issuer.token(args.token))
        return
    _, sessions = database(args.database)
    seed(sessions)
    for user in USERS:
        print(f"{user:6} Authorization: Bearer {issuer.token(user)}")
    app = create_app(Settings(jwks=str(issuer.jwks), database_url=args.database,
                              policyd=args.policyd))
    # behind a proxy, X-Forwarded-For from 127.0.0.1 names the caller (context.ip)
    uvicorn.run(app, host="127.0.0.1", port=args.port, proxy_headers=True,
                forwarded_allow_ips="127.0.0.1", log_level="info")


if __name__ == "__main__":
    main()
