"""``python -m fireact_eval.cli``: the same as the ``fireact-eval`` command."""

from fireact_eval.cli import main

main()
