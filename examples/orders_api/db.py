"""The orders database: SQLAlchemy models over SQLite (or PostgreSQL: set
ORDERS_DATABASE_URL), and a seed for trying the API."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    # lists are filtered by tenant (the plan's condition) and paged by id
    __table_args__ = (Index("orders_tenant_id", "tenant", "id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    tenant: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    total: Mapped[float] = mapped_column(Float)
    card_last4: Mapped[str] = mapped_column(String(4))
    internal_notes: Mapped[str] = mapped_column(String(2000), default="")  # <= 4096 bytes
    shared_with: Mapped[list] = mapped_column(JSON, default=list)


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))


def database(url: str):
    """An engine and a session factory; SQLite gets a busy timeout and WAL so the
    thread pool's connections do not trip over each other."""
    args = {"connect_args": {"check_same_thread": False, "timeout": 30}} \
        if url.startswith("sqlite") else {}
    engine = create_engine(url, **args)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
    Base.metadata.create_all(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)


SEED = [
    Order(id="o1", owner="alice", tenant="t1", status="paid", total=20, card_last4="4242",
          internal_notes="called twice", shared_with=["carol"]),
    Order(id="o2", owner="bob", tenant="t1", status="paid", total=120, card_last4="1881",
          internal_notes="", shared_with=[]),
    Order(id="o3", owner="erin", tenant="t2", status="new", total=75, card_last4="0005",
          internal_notes="VIP", shared_with=[]),
]


def seed(sessions, orders=None) -> None:
    with sessions.begin() as s:
        for o in orders or SEED:
            s.merge(Order(**{c.name: getattr(o, c.name) for c in Order.__table__.columns}))


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")
