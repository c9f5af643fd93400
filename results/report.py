"""What the trajectory report shows, as plain data: runs, questions, steps, outcomes, pairs.

``build_report`` reads lm-eval result folders (through ``frame.load_runs`` and
``run_files``) into a ``Report``; ``report_page`` renders it as one HTML file and does
nothing else, so everything a reader of the page relies on (which outcome a sample got,
which observation was perturbed, which questions two runs disagree on, the paired test)
is decided and tested here.

Runs logged before per-step marks and outcomes were recorded get both derived: an invalid
action and a failed tool call from the observation the engine wrote, a perturbed
observation from the noise draw (a pure function of seed, doc and turn), the outcome from
the trajectory (``outcomes.classify``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

import pandas as pd

from fireact_eval.errors import FireactError
from fireact_eval.harness.run_files import LoggedSample
from fireact_eval.outcomes import OUTCOME_HELP, OUTCOMES, classify
from fireact_eval.perturb import perturbed_at, try_key
from fireact_eval.results.frame import load_runs, pool_seeds
from fireact_eval.results.gate import environment_differences, one_run, shared_tasks
from fireact_eval.results.tables import (
    SHAPES,
    WHERE_THEY_APPLY,
    interval_notes,
    provenance,
    readable,
)
from fireact_eval.rollout import INVALID_ACTION_PREFIX, TOOL_FAILED_PREFIX
from fireact_eval.stats import LEVEL, PairedBinary, paired_scores
from fireact_eval.tool_calls import TOOL_ARGUMENTS
from fireact_eval.trajectory import INVALID_ACTION, PERTURBED, TOOL_ERROR, Step

# A run's settings the report lists beside its label.
RUN_SETTINGS = ("method", "shots", "format", "noise", "noise_p", "search", "max_turns", "data",
                "model_path")


@dataclass
class StepView:
    """One step as the page shows it; ``mark`` is one of ``trajectory.MARKS`` or None;
    ``text``, what the model wrote, only where it did not parse into a thought and an
    action (the rest is ``thought`` and ``action`` already); ``call``, in a run of the
    ``tools`` layout, the action as the tool call it was (``search({"query": ...})``);
    ``fault``, on a perturbed step, its kind (``perturb``), which the page colours."""

    kind: str
    thought: str | None
    action: str | None
    argument: str | None
    observation: str | None
    mark: str | None
    text: str
    call: str = ""
    fault: str | None = None


@dataclass
class QuestionView:
    """One run's rollout of one question (one try of it, for a run with repeats), with what
    it scored, how it ended and its cost."""

    run: int  # index into Report.runs
    key: str  # lm-eval's doc hash: the same question in two runs has the same key
    question: str
    gold: str
    predicted: str | None
    outcome: str
    correct: bool
    perturbed: bool
    turns: int
    tool_calls: int
    invalid_actions: int
    tool_errors: int
    perturbed_calls: int
    prompt_tokens: int
    gen_tokens: int
    seconds: float
    steps: list[StepView]
    attempt: int = 0  # which try of the question (0: the first, or the only one)
    tries: int = 1  # how many tries the run made of it

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.gen_tokens


@dataclass
class RunView:
    """One task of one run: its label, settings, headline score with its interval, the
    count of each outcome, mean costs, and the prompt of its first question (prompts
    differ only in the question, so the page shows one per run)."""

    id: int
    label: str
    task: str
    dataset: str
    settings: dict[str, str]
    n: int
    metric: str
    score: float
    low: float
    high: float
    outcomes: dict[str, int]
    cost: dict[str, float]
    prompt: str
    results_file: str


@dataclass
class PairView:
    """Baseline (a) against candidate (b) on one task, over the questions both answered:
    the 2x2 table, McNemar's exact p, the mean difference b - a with its paired bootstrap
    interval, how a's outcomes turned into b's, and the questions where they differ (in
    correctness or in the answer given)."""

    task: str
    a: int
    b: int
    only_in_a: int  # questions only one run answered: left out of the comparison
    only_in_b: int
    test: PairedBinary
    transitions: dict[str, dict[str, int]]
    differing: list[str]

    @property
    def reached_by_b(self) -> list[str]:
        """The outcomes B reached: the transition matrix's columns."""
        return [y for y in OUTCOMES if any(row[y] for row in self.transitions.values())]


@dataclass
class Table:
    """A results table (``results table --shape``) as header and rows of strings."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    runs: list[RunView]
    questions: list[QuestionView]
    pairs: list[PairView]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=lambda: dict(OUTCOME_HELP))
    level: float = LEVEL

    def to_dict(self) -> dict:
        """What the page's script reads (questions carry their token total)."""
        data = asdict(self)
        for view, record in zip(self.questions, data["questions"], strict=True):
            record["tokens"] = view.tokens
        return data


def step_marks(sample: LoggedSample, attempt: int = 0) -> list[str | None]:
    """Each step's mark of one try: as recorded, or for runs logged before marks were,
    derived."""
    steps = sample.tries[attempt].steps if sample.tries else sample.trajectory.steps
    if any(step.mark for step in steps) or not steps:
        return [step.mark for step in steps]
    noise = str(sample.settings.get("noise", "off"))
    p, seed = float(sample.settings.get("noise_p", 0.5)), int(sample.settings.get("noise_seed", 0))
    doc_key = try_key(str(sample.doc.get("id", sample.doc_id)), attempt)
    marks, turn = [], 0
    for step in steps:
        turn += step.kind == "act"
        marks.append(_derived_mark(step, turn, noise != "off"
                                   and perturbed_at(p, seed, doc_key, turn)))
    return marks


def _derived_mark(step: Step, turn: int, drawn: bool) -> str | None:
    observation = step.observation or ""
    if step.kind != "act" or step.observation is None:
        return None
    if observation.startswith(INVALID_ACTION_PREFIX):
        return INVALID_ACTION
    if observation.startswith(TOOL_FAILED_PREFIX):
        return TOOL_ERROR
    return PERTURBED if drawn else None


def _call(step: Step) -> str:
    """A step's action as the tool call it was, the way the API and the report write one."""
    if not step.action or step.argument is None:
        return ""
    argument = TOOL_ARGUMENTS.get(step.action, "query")
    return f"{step.action}({json.dumps({argument: step.argument}, ensure_ascii=False)})"


def question_views(run: int, sample: LoggedSample) -> list[QuestionView]:
    """A view per try of the sample's question (one without repeats, or for greedy
    repeats, which are copies), each scored and classified on its own."""
    tries = sample.scored_tries()
    calls = sample.settings.get("format") == "tools"
    views = []
    for attempt, (t, correct) in enumerate(tries):
        marks = step_marks(sample, attempt)
        # a perturbed step logged before kinds were: the run's one kind (none or random)
        old_kind = str(sample.settings.get("noise", "off"))
        steps = [StepView(s.kind, s.thought, s.action, s.argument, s.observation, mark,
                          s.text if mark == INVALID_ACTION or (s.kind == "act" and not s.thought)
                          else "", _call(s) if calls else "",
                          (s.fault or old_kind) if mark == PERTURBED else None)
                 for s, mark in zip(t.steps, marks, strict=True)]
        outcome = sample.outcome if len(tries) == 1 else classify(t, correct)
        views.append(QuestionView(
            run=run, key=sample.doc_hash, question=sample.question,
            gold=str(sample.doc.get("answer", "")), predicted=t.answer, outcome=outcome,
            correct=correct, perturbed=PERTURBED in marks, turns=t.turns,
            tool_calls=t.tool_calls, invalid_actions=t.invalid_actions,
            tool_errors=t.tool_errors, perturbed_calls=t.perturbed_calls,
            prompt_tokens=t.prompt_tokens, gen_tokens=t.gen_tokens, seconds=t.seconds,
            steps=steps, attempt=attempt, tries=len(tries)))
    return views


def _run_view(run_id: int, row: pd.Series, questions: list[QuestionView],
              prompt: str) -> RunView:
    counts = Counter(q.outcome for q in questions)  # over every try
    n = len({q.key for q in questions}) or int(row["n"] or 0)
    cost = {name: sum(getattr(q, name) for q in questions) / len(questions)
            for name in ("turns", "tool_calls", "invalid_actions", "prompt_tokens",
                         "gen_tokens", "seconds")} if questions else {}
    return RunView(
        id=run_id, label=str(row["model"]), task=str(row["task"]), dataset=str(row["dataset"]),
        settings={k: str(row[k]) for k in RUN_SETTINGS if str(row[k]) not in ("", "nan")},
        n=n, metric=str(row["metric"]), score=float(row["score"]),
        low=float(row["score_low"]), high=float(row["score_high"]),
        outcomes={name: counts.get(name, 0) for name in OUTCOMES}, cost=cost, prompt=prompt,
        results_file=str(row["results_file"]))


def _table(title: str, frame: pd.DataFrame) -> Table:
    frame = frame.reset_index()

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if pd.isna(value) else f"{value:.3f}"
        return str(value)

    return Table(title, [str(c) for c in frame.columns],
                 [[cell(v) for v in row] for row in frame.itertuples(index=False)])


def _pair(task: str, a: RunView, b: RunView,
          by_run: dict[int, dict[str, list[QuestionView]]]) -> PairView:
    """Paired on each question's score: right or wrong, or with repeats its mean over the
    tries (then no McNemar); outcomes and answers compared on the first tries."""
    qa, qb = by_run[a.id], by_run[b.id]
    if not qa or not qb:
        raise FireactError(f"{task}: the paired view needs per-question samples; run "
                           "lm_eval with --log_samples for both runs")
    shared = [key for key in qa if key in qb]
    if not shared:
        raise FireactError(f"{task}: {a.label} and {b.label} share no question (matched by "
                           "lm-eval's doc hash); evaluate them on the same questions")
    def score(views: list[QuestionView]) -> float:
        return sum(v.correct for v in views) / len(views)

    test = paired_scores([score(qa[k]) for k in shared], [score(qb[k]) for k in shared])
    transitions = {x: {y: 0 for y in OUTCOMES} for x in OUTCOMES}
    for key in shared:
        transitions[qa[key][0].outcome][qb[key][0].outcome] += 1
    differing = [k for k in shared if score(qa[k]) != score(qb[k])
                 or (qa[k][0].predicted or "").strip() != (qb[k][0].predicted or "").strip()]
    return PairView(task, a.id, b.id, len(qa) - test.n, len(qb) - test.n, test, transitions,
                    differing)


def build_report(specs: list[str], baseline: str | None = None,
                 candidate: str | None = None) -> Report:
    """The report of the runs named by ``specs`` (``PATH`` or ``LABEL=PATH``, as ``results
    table`` takes them); the paired view compares ``baseline`` with ``candidate``, by
    default the first two specs, task by task, on the questions both answered."""
    if (baseline is None) != (candidate is None):
        raise FireactError("give both --baseline and --candidate, or neither (then the "
                           "first two runs are paired)")
    if baseline is None and len(specs) >= 2:
        baseline, candidate = specs[0], specs[1]
    all_specs = [*specs, *(s for s in (baseline, candidate) if s and s not in specs)]
    if not all_specs:
        raise FireactError("no runs given")
    frame = load_runs(all_specs)
    runs, questions, by_run = [], [], {}
    for run_id, (_, row) in enumerate(frame.iterrows()):
        samples = list(row["result"].samples())
        views = [view for sample in samples for view in question_views(run_id, sample)]
        runs.append(_run_view(run_id, row, views, samples[0].prompt if samples else ""))
        questions += views
        by_run[run_id] = {}
        for view in views:
            by_run[run_id].setdefault(view.key, []).append(view)
    pairs, pair_notes = [], []
    if baseline is not None:
        ids = {(r.results_file, r.task): r for r in runs}
        base, cand = load_runs([baseline]), load_runs([candidate])
        for task in shared_tasks(base, cand):
            rows = one_run(base, task, "baseline"), one_run(cand, task, "candidate")
            if differ := environment_differences(*rows):  # still paired (clean vs noisy is
                pair_notes.append(f"paired view of {task}: the runs differ in their "  # useful)
                                  f"environment ({'; '.join(differ)}), so B - A is partly "
                                  "the environment's")
            a, b = (ids[(row["results_file"], task)] for row in rows)
            pairs.append(_pair(task, a, b, by_run))
    pooled = pool_seeds(frame)
    tables, notes = [], [*pair_notes, *interval_notes(pooled), *provenance(frame)]
    for name, shape in SHAPES.items():
        try:
            tables.append(_table(name, readable(shape(pooled))))
        except FireactError as err:  # one table that cannot be drawn; the rest still can
            if name not in WHERE_THEY_APPLY:
                notes.append(f"no {name} table: {err}")
    return Report(runs, questions, pairs, tables, notes)
