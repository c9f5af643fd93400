"""The lm-eval glue, all of it, and the only package that imports lm-eval.

- ``task``: ``ReactTask``, the YAML task class whose one request per doc is a whole rollout;
- ``backend``: the ``react_generate`` request type that runs those rollouts on any lm-eval
  backend (one ``generate_until`` per turn, lm-eval's ``--use_cache``, API concurrency);
- ``preflight``: every fireact task's settings checked, and its tools built, before lm-eval
  loads the model; lm-eval's advice that is not meant for our tasks dropped;
- ``autoload``: the start-up hook that shows lm-eval our tasks and runs the preflight;
- ``run_files``: lm-eval's output files (results, samples) read, and written for imports;
- ``evaluate``: lm-eval's Python API as ``generate`` drives it.

Every use of lm-eval beyond its documented API is in these modules and is named in
``tests/test_lm_eval_compat.py``.  Kept import-free: the start-up hook imports this package
in every Python process.
"""
