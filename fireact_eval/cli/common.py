"""What every command group shares: output paths checked by argparse before any work."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

from fireact_eval.errors import FireactError, SettingsError
from fireact_eval.jsonio import output_figure, output_file, output_folder


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
OUT_FIGURE = _checked(output_figure)


def add_force(p: argparse.ArgumentParser) -> None:
    """``--force`` / ``--overwrite``: the one way to write over an existing output."""
    p.add_argument("--force", "--overwrite", action="store_true",
                   help="write over an output that exists (never over one of the inputs)")


@contextlib.contextmanager
def door() -> Iterator[None]:
    """Where a command's settings enter: a mistake found here is a settings error (one
    line, exit 2), found before any model loads or any file is written."""
    try:
        yield
    except SettingsError:
        raise
    except FireactError as err:
        raise SettingsError(str(err)) from None
