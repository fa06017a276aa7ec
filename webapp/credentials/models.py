from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, false, func, text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.dbtypes import UTCDateTime, utcnow
from webapp.ecs import DEFAULT_BASE_URL
from webapp.extensions import db
from webapp.security.secretbox import sealed_columns

SHORT_REASON = 160  # characters of a failed sync's reason in the Last sync column
_FAILED_SYNC = re.compile(r"^Sync of .*? failed; nothing was changed\. ")
_SENTENCE = re.compile(r"(?<=\.)\s+(?=[A-Z])")
# How a refusal of the login Entrust gave other work than a Test Login begins on the credential.
REFUSED_DURING = "Entrust refused this login during "


@sealed_columns("api_key_sealed", "client_key_sealed")
class EcsCredential(db.Model):
    """An Entrust ECS API account. Secrets are sealed; a deleted credential keeps its row
    (secrets erased) so that what refers to it keeps its history."""

    __tablename__ = "ecs_credential"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    api_user: Mapped[str] = mapped_column(String(200))
    api_key_sealed: Mapped[str] = mapped_column(Text, default="")
    base_url: Mapped[str] = mapped_column(String(500), default=DEFAULT_BASE_URL)
    proxy: Mapped[str] = mapped_column(String(500), default="")
    # The client certificate is public; its private key is sealed. A PKCS#12 upload is opened
    # with its password at save time and stored the same way (the password itself is not kept).
    client_cert_pem: Mapped[str] = mapped_column(Text, default="")
    client_key_sealed: Mapped[str] = mapped_column(Text, default="")
    client_cert_subject: Mapped[str] = mapped_column(String(500), default="")
    client_cert_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ca_bundle_pem: Mapped[str] = mapped_column(Text, default="")  # extra TLS trust (gateways)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=True)
    admin_note: Mapped[str] = mapped_column(Text, default="")  # why admin rights were cleared
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_message: Mapped[str] = mapped_column(Text, default="")
    # The failed login on record (``last_test_ok`` False) was Entrust refusing it (401/403), not a
    # call it never answered (timeout, connection, TLS) or a client certificate that could not be
    # used here: only such a credential is left out of the scheduled import.
    last_test_refused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    organizations_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    domains_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    products_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_sync_error: Mapped[str] = mapped_column(Text, default="")
    last_sync_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The kinds whose latest sync failed, comma-separated: a later sync of other kinds does
    # not clear the failure.
    last_sync_failed_kinds: Mapped[str] = mapped_column(String(64), default="")
    # When the API user, API key or client certificate last changed (None: not since it was
    # added). A sync's verdict on the login from before then is about other secrets.
    login_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_sealed)

    @property
    def has_client_cert(self) -> bool:
        return bool(self.client_cert_pem)

    @property
    def usable(self) -> bool:
        return self.enabled and self.deleted_at is None

    @property
    def last_synced_at(self) -> datetime | None:
        """The last successful sync of any kind."""
        done = [
            t
            for t in (self.organizations_synced_at, self.domains_synced_at, self.products_synced_at)
            if t is not None
        ]
        return max(done) if done else None

    @property
    def sync_failure_reason(self) -> str:
        """Why the latest sync failed, in short (the first sentence of the reason); "" if it
        did not."""
        reason = _FAILED_SYNC.sub("", self.last_sync_error or "").strip()
        first = _SENTENCE.split(reason, maxsplit=1)[0]
        if len(first) > SHORT_REASON:
            first = first[:SHORT_REASON].rsplit(" ", 1)[0] + " …"
        return first

    @property
    def sync_failed_kinds(self) -> list[str]:
        """The kinds (organizations, domains, products) whose latest sync failed."""
        return [k for k in (self.last_sync_failed_kinds or "").split(",") if k]

    def _since_login_change(self, when: datetime | None) -> bool:
        return when is not None and (self.login_changed_at is None or when >= self.login_changed_at)

    @property
    def refused_during_work(self) -> bool:
        """The failed login on record was a refusal Entrust gave a status check, an import or a
        sync (``credentials.login_refused``), not a Test Login."""
        return self.last_test_ok is False and (self.last_test_message or "").startswith(
            REFUSED_DURING
        )

    @property
    def sync_failed_with_this_login(self) -> bool:
        """The latest sync failed, and it used the API user, key and client certificate the
        credential holds now."""
        if not self.last_sync_error:
            return False
        return self.login_changed_at is None or self._since_login_change(self.last_sync_failed_at)

    @property
    def synced_with_this_login(self) -> bool:
        """A sync succeeded with the API user, key and client certificate held now."""
        return self._since_login_change(self.last_synced_at)


# Names are unique, whatever their case, among credentials that are not deleted: "Prod" and
# "prod" would be one name to whoever picks a credential from a list.
Index(
    "uq_ecs_credential_live_name",
    func.lower(EcsCredential.name),
    unique=True,
    sqlite_where=text("deleted_at IS NULL"),
    postgresql_where=text("deleted_at IS NULL"),
)
