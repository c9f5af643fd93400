"""Search backends: BM25 build and query latency over 100k passages, and SerpAPI turn
concurrency against a loopback server with 100 ms latency per call.

    python benchmarks/bench_search.py
"""

from __future__ import annotations

import itertools
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fireact_eval.rollout import call_tools
from fireact_eval.tools.local_search import LocalSearch
from fireact_eval.tools.serpapi import SerpApiSearch

TESTS = Path(__file__).resolve().parents[1] / "tests"
SERVER = """
import sys, time
sys.path.insert(0, "{tests}")
from serpapi_server import SerpApiServer
print(SerpApiServer(latency={latency}).base_url, flush=True)
time.sleep(3600)
"""


def synthetic_corpus(path: Path, n: int, rng: random.Random) -> list[str]:
    """Zipf-distributed words from a 30k vocabulary, 40-120 words per passage."""
    vocab = [f"w{i}" for i in range(30_000)]
    cum_weights = list(itertools.accumulate(1 / (i + 1) for i in range(len(vocab))))
    with path.open("w") as fh:
        for i in range(n):
            words = rng.choices(vocab, cum_weights=cum_weights, k=rng.randint(40, 120))
            fh.write(json.dumps({"title": f"Passage {i}", "text": " ".join(words)}) + "\n")
    return [" ".join(rng.choices(vocab[100:5000], k=rng.randint(2, 6))) for _ in range(500)]


def bench_bm25(n: int) -> dict:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["FIREACT_EVAL_CACHE"] = tmp
        corpus = Path(tmp) / "corpus.jsonl"
        queries = synthetic_corpus(corpus, n, rng)
        started = time.perf_counter()
        LocalSearch(corpus)
        build = time.perf_counter() - started
        started = time.perf_counter()
        search = LocalSearch(corpus)  # the cached index, memory-mapped
        load = time.perf_counter() - started
        times = []
        for q in queries:
            t = time.perf_counter()
            search(q)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"passages": n, "build_s": round(build, 2), "build_passages_per_s": int(n / build),
            "reload_s": round(load, 2), "query_p50_ms": round(statistics.median(times), 2),
            "query_p95_ms": round(times[int(0.95 * len(times))], 2)}


def bench_serpapi(n: int = 32, latency: float = 0.1) -> dict:
    """The loopback server runs in its own process, so it does not share our GIL."""
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER.format(tests=TESTS, latency=latency)],
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


if __name__ == "__main__":
    print(json.dumps({"bm25": bench_bm25(100_000), "serpapi": bench_serpapi()}, indent=2))
