"""The trajectory report as one self-contained HTML file: a thin rendering of ``report.Report``.

Everything is inline (style, script, the data as JSON, the outcome bars as CSS), so the file
opens from ``file://`` with no network and no server, and can be mailed or attached to a CI
run.  The question lists draw only the rows in view, so a 14,042-question MMLU run stays
responsive.  The template is Jinja2 (it comes with lm-eval) with autoescaping; the script
puts model text into the page as text nodes, never as markup.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jinja2

from fireact_eval.jsonio import write_atomic
from fireact_eval.results.report import Report

TEMPLATE = "report.html.j2"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _finite(value):
    """NaN (an interval of no questions) as null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def render(report: Report, title: str = "") -> str:
    data = json.dumps(_finite(report.to_dict()), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False, default=str)
    # inside <script>, "</script>" or "<!--" in a model's text must not end the block
    data = data.replace("<", "\\u003c")
    tasks = sorted({run.task for run in report.runs})
    return _environment().get_template(TEMPLATE).render(
        report=report, data_json=data, tasks=tasks, outcomes=list(report.outcomes),
        title=title or ", ".join(dict.fromkeys(run.label for run in report.runs)),
        generated=time.strftime("%Y-%m-%d %H:%M"))


def write_report(report: Report, out: str | Path, title: str = "") -> Path:
    """Write the page whole or not at all; returns its path."""
    out = Path(out)
    write_atomic(out, render(report, title))
    return out
