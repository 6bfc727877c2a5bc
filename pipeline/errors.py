"""Errors that are the user's to fix: the CLI prints them and exits with code 2, no traceback.
`UserError` is the libraries' (models/errors.py), one class for the whole product."""

from __future__ import annotations

from models.errors import UserError

__all__ = ["DataError", "UserError"]


class DataError(UserError):
    """Input data that breaks the contract (docs: README, 'Your own data')."""
