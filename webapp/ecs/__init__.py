"""HTTP client for the Entrust Certificate Services (ECS) Enterprise API v2.

Knows HTTP and the ECS JSON, nothing else: no Flask, no database, no other webapp package.

    from webapp.ecs import EcsClient, budget_for, errors, types

    client = EcsClient(base_url, api_user, api_key,
                       rate_budget=budget_for((base_url, api_user), per_minute=120))
    for cert in client.iter_certificates({"status": ["ACTIVE", "READY"]}, fields="*"):
        ...
"""

from . import errors, types
from .client import DEFAULT_BASE_URL, EcsClient
from .ratelimit import RateBudget, budget_for, clear_budgets

__all__ = [
    "DEFAULT_BASE_URL",
    "EcsClient",
    "RateBudget",
    "budget_for",
    "clear_budgets",
    "errors",
    "types",
]
