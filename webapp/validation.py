"""The one error type for input a person can correct.

Every feature's input error (``PkiError``, ``CredentialError``, ``UserError`` ...) is an
``InputError``: a message to show, and the form field to show it next to (empty for the whole
form). Views catch it, render the form again with the message, and answer 422; nothing is stored.
"""

from __future__ import annotations


class InputError(ValueError):
    """Input that cannot be accepted; ``field`` names the form field it belongs to."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field or ""

    @property
    def message(self) -> str:
        return str(self)

    def as_errors(self) -> dict[str, str]:
        """``{field: message}`` for a form template (``form`` when no field is named)."""
        return {self.field or "form": str(self)}
