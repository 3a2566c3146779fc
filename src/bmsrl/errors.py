"""Errors the CLI reports as one line naming the offending file or key (exit status 2)."""


class UserError(Exception):
    """Bad user input: a malformed file, a wrong config value, a missing checkpoint."""
