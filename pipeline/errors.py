"""Errors that are the user's to fix: the CLI prints them and exits with code 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration: the message says what is wrong and how to fix it."""

    exit_code = 2


class DataError(UserError):
    """Input data that breaks the contract (docs: README, 'Your own data')."""
