"""Imports every model so that the metadata (and Alembic) sees the whole schema."""

from webapp.audit.models import AuditEvent, AuditHead  # noqa: F401
from webapp.auth.models import LoginAttempt, User, UserSession  # noqa: F401
from webapp.catalog.models import CatalogDomain, CatalogOrganization, CatalogProduct  # noqa: F401
from webapp.certificates.models import (  # noqa: F401
    Certificate,
    CertificateExpiryDay,
    CertificateName,
)
from webapp.credentials.models import EcsCredential  # noqa: F401
from webapp.csrs.models import Csr, CsrName  # noqa: F401
from webapp.jobs.models import Job  # noqa: F401
from webapp.keys.models import PrivateKey  # noqa: F401
from webapp.orders.models import Order, OrderEvent, OrderName  # noqa: F401
from webapp.scheduler import PeriodicRun, SchedulerLease  # noqa: F401
from webapp.settings.models import Setting  # noqa: F401
