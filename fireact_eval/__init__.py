"""fireact-eval: evaluate and fine-tune ReAct language agents inside lm-evaluation-harness.

Kept import-free on purpose: ``fireact_eval-autoload.pth`` imports this package (and
``fireact_eval.harness.autoload``) in every Python process.  The layers, each a module or
package whose place says what it may import (the README's Layout section draws them):

- the engine, plain Python that never imports lm-eval: ``catalog``, ``trajectory``,
  ``transcript``, ``rollout``, ``perturb``, ``tools``, ``answer_match``, ``scoring``,
  ``outcomes``, ``stats``, ``prompts``, ``questions``, ``rollout_settings``;
- ``harness``: the only importer of lm-eval (task class, request type, preflight,
  start-up hook, lm-eval's files);
- ``data``: training rows (read, convert, import, decontaminate, mix, stats); ``generate``
  and ``convert`` on top of it; ``trainers`` import data, never the other way;
- ``results``: tables, plots, the gate, the report; ``cli``: the commands.
"""

__version__ = "0.1.0"
