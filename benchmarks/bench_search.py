"""Search backends: the local index (tantivy, what `local:` and `wiki` use) against bm25s as
this project used it before, on synthetic Wikipedia-like passages; recall@1 on real
Wikipedia paragraphs; SerpAPI turn concurrency against a loopback server.

    python benchmarks/bench_search.py                       # 250k, 500k, 1M passages
    python benchmarks/bench_search.py --passages 100000 --engines tantivy

Each build runs in a fresh process, so its peaks are its own: ``peak_rss_mb`` (``ru_maxrss``,
which counts the pages of memory-mapped index files it touched) and ``peak_anon_rss_mb`` (heap
only, sampled), over reading the corpus, indexing, writing and reopening.  bm25s is no
dependency any more: ``pip install -e ".[bench]"``.  Recall@1 reads
``../shared/data/wiki-squad/`` when present.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "wiki-squad" / "squaddev_v1.1.json"
SERVER = """
import sys, time
sys.path.insert(0, "{tests}")
from serpapi_server import SerpApiServer
print(SerpApiServer(latency={latency}).base_url, flush=True)
time.sleep(3600)
"""


def synthetic_corpus(path: Path, n: int, seed: int = 0, chunk: int = 20_000) -> None:
    """Wikipedia-like: a 1-3 word title that the text opens with, then 40-120 words drawn
    from a Zipf distribution (weight 1/rank) over a 50k vocabulary."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(50_000)], dtype=object)
    weights = 1 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    with path.open("w") as fh:
        for first in range(0, n, chunk):
            size = min(chunk, n - first)
            lengths = rng.integers(40, 121, size)
            words = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=weights)]
            title_words = vocab[rng.integers(200, len(vocab), (size, 3))]
            title_lengths = rng.integers(1, 4, size)
            cuts = np.cumsum(lengths)[:-1]
            for i, text in enumerate(np.split(words, cuts)):
                title = " ".join(title_words[i, :title_lengths[i]]).title() + f" {first + i}"
                fh.write(json.dumps({"_id": str(first + i), "title": title,
                                     "text": f"{title} is " + " ".join(text) + "."}) + "\n")


def queries(n: int = 500, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(100, 5000)]
    return [" ".join(rng.choices(vocab, k=rng.randint(2, 6))) for _ in range(n)]


class Bm25sAsBefore:
    """bm25s as ``local_search.py`` used it until this change: the whole corpus in a list,
    tokenised at once (Snowball stemming, English stopwords), top-1 from the score vector."""

    def __init__(self, corpus: Path, index_dir: Path) -> None:
        import bm25s
        import numpy as np
        import Stemmer

        self.np, self.bm25s, self.stemmer = np, bm25s, Stemmer.Stemmer("english")
        with corpus.open() as fh:
            self.passages = [json.loads(line) for line in fh]
        if not (index_dir / "params.index.json").is_file():  # built once, as before
            tokens = bm25s.tokenize([f"{p['title']} {p['text']}" for p in self.passages],
                                    stopwords="en", stemmer=self.stemmer, show_progress=False)
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
            retriever.save(str(index_dir), show_progress=False)
        self.retriever = bm25s.BM25.load(str(index_dir), mmap=True, show_progress=False)

    def best(self, query: str) -> dict | None:
        [tokens] = self.bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer,
                                       show_progress=False, return_ids=False)
        ids = self.retriever.get_tokens_ids(tokens)
        if not ids:
            return None
        scores = self.retriever.get_scores_from_ids(ids)
        best = int(self.np.argmax(scores))
        return self.passages[best] if scores[best] > 0 else None

    def __call__(self, query: str) -> str:
        best = self.best(query)
        return "" if best is None else f"{best['title']}: {best['text']}"[:600]


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class PeakAnonRss:
    """Samples this process's anonymous resident memory (``RssAnon``: heap, not the
    memory-mapped index files, whose pages the kernel can drop) every 20 ms."""

    def __init__(self) -> None:
        import threading

        self.peak_kb, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("RssAnon:"):
                        self.peak_kb = max(self.peak_kb, int(line.split()[1]))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb // 1024


def child(engine: str, corpus: Path, work: Path) -> dict:
    """One build + reload + queries, in this (fresh) process."""
    os.environ["FIREACT_EVAL_CACHE"] = str(work / "cache")
    anon = PeakAnonRss()
    started = time.perf_counter()
    if engine == "tantivy":
        from fireact_eval.tools.local_search import LocalSearch

        LocalSearch(corpus, progress=False)
        build = time.perf_counter() - started
        started = time.perf_counter()
        search = LocalSearch(corpus, progress=False)  # the cached index, memory-mapped
        size = _du(search.index.path)
    else:
        Bm25sAsBefore(corpus, work / "bm25s")
        build = time.perf_counter() - started
        started = time.perf_counter()
        search = Bm25sAsBefore(corpus, work / "bm25s")
        size = _du(work / "bm25s")
    reload = time.perf_counter() - started
    peak_anon = anon.stop()
    times = []
    for q in queries():
        t = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    with corpus.open() as fh:
        n = sum(1 for _ in fh)
    return {"engine": engine, "passages": n, "build_s": round(build, 1),
            "passages_per_s": int(n / build),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "peak_anon_rss_mb": peak_anon,
            "index_mb": round(size / 2**20), "reload_s": round(reload, 2),
            "query_p50_ms": round(statistics.median(times), 2),
            "query_p95_ms": round(times[int(0.95 * len(times))], 2)}


def bench_engine(engine: str, corpus: Path) -> dict:
    with tempfile.TemporaryDirectory() as work:
        proc = subprocess.run([sys.executable, __file__, "--child", engine, str(corpus), work],
                              capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def recall_at_1(engine: str) -> float | None:
    """Gold paragraph first, one SQuAD question per paragraph (2,067 questions)."""
    if not SQUAD.is_file():
        return None
    data = json.loads(SQUAD.read_text())["data"]
    with tempfile.TemporaryDirectory() as work:
        corpus, gold = Path(work) / "squad.jsonl", []
        with corpus.open("w") as fh:
            for article in data:
                for para in article["paragraphs"]:
                    fh.write(json.dumps({"title": article["title"], "text": para["context"]})
                             + "\n")
                    gold += [(q["question"], para["context"]) for q in para["qas"][:1]]
        os.environ["FIREACT_EVAL_CACHE"] = str(Path(work) / "cache")
        if engine == "tantivy":
            from fireact_eval.tools.local_search import LocalSearch

            index = LocalSearch(corpus, progress=False).index
            hits = sum(bool(best) and best[0].text == text
                       for q, text in gold for best in [index.search(q)])
        else:
            search = Bm25sAsBefore(corpus, Path(work) / "bm25s")
            hits = sum(best is not None and best["text"] == text
                       for q, text in gold for best in [search.best(q)])
    return round(hits / len(gold), 4)


def bench_serpapi(n: int = 32, latency: float = 0.1) -> dict:
    """The loopback server runs in its own process, so it does not share our GIL."""
    from fireact_eval.rollout import call_tools
    from fireact_eval.tools.serpapi import SerpApiSearch

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=ROOT / "tests", latency=latency)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        search = SerpApiSearch("bench-key", base_url=base_url, timeout=5)
        call_tools([(search, "warm-up")])
        started = time.perf_counter()
        call_tools([(search, f"query {i}") for i in range(n)])
        wall = time.perf_counter() - started
    finally:
        server.kill()
    return {"queries": n, "latency_ms": latency * 1000, "turn_wall_ms": round(wall * 1000),
            "latencies_paid": round(wall / latency, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1_000_000, help="largest corpus size")
    parser.add_argument("--steps", type=int, default=3,
                        help="sizes measured: passages/steps*... (default 250k, 500k, 1M)")
    parser.add_argument("--engines", default="tantivy,bm25s")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    engines = args.engines.split(",")
    sizes = sorted({args.passages // 2 ** k for k in range(args.steps)})
    report: dict = {"builds": [], "recall_at_1": {}, "serpapi": bench_serpapi()}
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / f"synthetic-{args.passages}.jsonl"
        synthetic_corpus(full, args.passages)
        for n in sizes:
            corpus = Path(tmp) / f"synthetic-{n}.jsonl"
            if corpus != full:
                with full.open() as src, corpus.open("w") as dst:
                    dst.writelines(itertools.islice(src, n))
            for engine in engines:
                result = bench_engine(engine, corpus)
                report["builds"].append(result)
                print(json.dumps(result), file=sys.stderr, flush=True)
    for engine in engines:
        report["recall_at_1"][engine] = recall_at_1(engine)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
