"""The one exception type for mistakes a user can fix (bad flag, missing file, missing key)."""


class FireactError(ValueError):
    """Raised for user-fixable problems; the message says what to do.

    Internal bugs are never wrapped in it, so a traceback still points at them.
    """
