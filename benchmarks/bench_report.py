"""How big the trajectory report gets and how fast it opens: build time, file size, and in
headless Chromium (Debian's, through playwright) the time to a usable page, to apply a
filter, to scroll to the last row and to open a trajectory.

    python benchmarks/bench_report.py RUN [RUN ...] [--out report.html]

RUN as ``fireact-eval report`` takes it (``LABEL=PATH``).  Each browser time is the median
of 3 loads in a fresh page.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from fireact_eval.results.report import build_report
from fireact_eval.results.report_page import write_report

TIMED_STEPS = """async () => {
  const t = performance.now(), F = id => document.getElementById(id);
  F("f-outcome").value = "turn_limit"; F("f-outcome").dispatchEvent(new Event("change"));
  const filtered = performance.now() - t;
  F("f-outcome").value = ""; F("f-outcome").dispatchEvent(new Event("change"));
  const list = F("q-list"); const s = performance.now();
  list.scrollTop = list.scrollHeight; list.dispatchEvent(new Event("scroll"));
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const scrolled = performance.now() - s; const c = performance.now();
  list.querySelector(".row").click();
  const opened = performance.now() - c;
  return {filtered, scrolled, opened, rows: list.querySelectorAll(".row").length};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="bench_report.html")
    args = parser.parse_args()
    started = time.perf_counter()
    report = build_report(args.runs)
    built = time.perf_counter() - started
    out = write_report(report, args.out)
    written = time.perf_counter() - started - built
    print(f"{len(report.runs)} runs, {len(report.questions)} rollouts, "
          f"{sum(len(q.steps) for q in report.questions)} steps, {len(report.pairs)} pairs")
    print(f"build {built:.1f} s, render+write {written:.1f} s, "
          f"file {out.stat().st_size / 1e6:.1f} MB")

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        loads, steps = [], []
        for _ in range(3):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(Path(out).resolve().as_uri(), timeout=300_000)
            page.wait_for_selector("body[data-ready='1']", timeout=300_000)
            loads.append(page.evaluate("performance.now()") / 1000)
            page.click("nav button[data-view='questions']")
            steps.append(page.evaluate(TIMED_STEPS))
            page.close()
        browser.close()
    median = {k: statistics.median(s[k] for s in steps) for k in ("filtered", "scrolled",
                                                                  "opened")}
    print(f"browser: usable after {statistics.median(loads):.2f} s (median of 3; "
          f"{', '.join(f'{x:.2f}' for x in loads)}); filter {median['filtered']:.0f} ms, "
          f"scroll to the end {median['scrolled']:.0f} ms, open a trajectory "
          f"{median['opened']:.0f} ms; {steps[0]['rows']} rows in the DOM")


if __name__ == "__main__":
    main()
