"""The one exception type for mistakes a user can fix (bad flag, missing file, missing key)."""


class FireactError(ValueError):
    """Raised for user-fixable problems; the message says what to do.

    Internal bugs are never wrapped in it, so a traceback still points at them.
    """


class SettingsError(FireactError):
    """A setting refused where it entered (a flag, ``--metadata``, an experiment YAML),
    before anything ran: the commands exit 2 for it, as argparse does for a bad flag."""
