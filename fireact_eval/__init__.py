"""fireact-eval: evaluate and fine-tune ReAct language agents inside lm-evaluation-harness.

Kept import-free on purpose: ``fireact_eval-autoload.pth`` imports this package in every
Python process.  The public API lives in submodules: ``fireact_eval.metrics``,
``fireact_eval.actions``, ``fireact_eval.trajectory``, ``fireact_eval.rollout``,
``fireact_eval.tools``.
"""

__version__ = "0.1.0"
