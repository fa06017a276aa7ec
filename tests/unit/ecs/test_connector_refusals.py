"""What the Entrust connector makes of ECS's refusals of a login (HTTP 401 and 403): the login
refused, or a right missing, as the orders feature acts on each."""

from __future__ import annotations

import pytest

from webapp.cas.base import NotAllowed
from webapp.cas.entrust import EntrustConnector
from webapp.credentials.models import EcsCredential

from .helpers import BASE, url


def _envelope(message: str) -> dict:
    return {"errors": [{"status": 0, "message": message}]}


@pytest.mark.parametrize(
    "status,message,login_refused",
    [
        (401, "Invalid API username or key", True),
        (401, "The client certificate does not belong to this API user", True),
        # A client certificate refused with a 403 is still the login refused, not a right that
        # an Entrust administrator could give.
        (403, "The client certificate does not belong to this API user", True),
        (403, "A client certificate is required for this API user", True),
        (403, "User is not authorized to view this certificate", False),
    ],
)
def test_a_refusal_is_the_login_or_a_missing_right(client, rsps, status, message, login_refused):
    rsps.get(url("/certificates/4711"), json=_envelope(message), status=status)
    connector = EntrustConnector(EcsCredential(base_url=BASE), client)
    with pytest.raises(NotAllowed) as refused:
        connector.fetch("4711")
    assert refused.value.login_refused is login_refused
    assert refused.value.needs_admin is not login_refused
