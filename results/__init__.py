"""Leaderboard tables, plots and the regression gate (installed as ``fireact_eval.results``)."""
