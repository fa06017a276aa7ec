"""CA orders: placed, imported and followed through the CA connector interface (webapp.cas).

The orders table and its use cases arrive with the orders feature; its settings are declared here
so Admin > Settings already lists them.
"""

from __future__ import annotations

from webapp.settings import service as settings

POLL_MINUTES = settings.register(
    "orders.poll_interval_minutes",
    15,
    "Order-status poll interval (minutes)",
    "How often pending Entrust orders are checked for a change of status.",
    minimum=1,
    maximum=1440,
)
