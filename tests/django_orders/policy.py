import os
from pathlib import Path

from policyd import Authorizer
from policyd.authn import JwtSettings, JwtVerifier

from .models import Order

ORDERS = Path(__file__).resolve().parents[2] / "policies" / "examples" / "orders"

authorizer = Authorizer.local(ORDERS)
authorizer.register(Order, "Order")
verifier = JwtVerifier(JwtSettings(
    issuers=["https://id.example.test"], audiences=["orders-api"],
    jwks=os.environ["ORDERS_JWKS"], principal_type="User",
    claims={"roles": "roles", "tenant": "tenant", "mfa": "mfa"}))
