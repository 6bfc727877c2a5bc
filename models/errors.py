"""Errors that are the user's to fix: the CLI prints them and exits with code 2, no traceback.

Defined here, in the library, so that the libraries can raise them without importing the
application; pipeline/errors.py adds the application's kinds.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input or configuration: the message says what is wrong and how to fix it."""

    exit_code = 2
