"""What every command group shares: output paths checked by argparse before any work."""

from __future__ import annotations

import argparse

from fireact_eval.errors import FireactError
from fireact_eval.jsonio import output_file, output_folder


def _checked(check):
    """A path check as an argparse ``type``: its message is argparse's one-line error."""
    def parse(value: str) -> str:
        try:
            return check(value)
        except FireactError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = check.__name__
    return parse


OUT_FILE, OUT_FOLDER = _checked(output_file), _checked(output_folder)
