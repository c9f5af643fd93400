"""A loopback server speaking SerpAPI's JSON, with scripted faults and latency."""

from __future__ import annotations

import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a whole turn of concurrent queries connects at once


class SerpApiServer:
    """``faults[query]`` is a list consumed one per call: "429", "500", "timeout",
    "malformed", "error", "noresults", "401", "quota", "wrong_box", "wrong_organic",
    "wrong_words", "truncated" or "badgzip"; when empty the call succeeds with
    ``responses[query]`` (default: an organic result naming the query)."""

    RANDOM_FAULTS = ("timeout", "429", "500", "malformed", "error", "wrong_box",
                     "wrong_organic", "wrong_words", "truncated", "badgzip")

    def __init__(self, latency: float = 0.0, hang: float = 1.0, fault_rate: float = 0.0,
                 seed: int = 0) -> None:
        """``fault_rate``: besides the scripted ``faults``, that share of calls fails (3 of
        every 10 for 0.3, by arrival), in each of ``RANDOM_FAULTS`` in turn; ``injected``
        counts them."""
        self.latency, self.hang = latency, hang
        self.fault_rate, self._arrivals = fault_rate, 0
        self._kinds = itertools.cycle(range(len(self.RANDOM_FAULTS)))
        self.injected: dict[str, int] = {}
        self.faults: dict[str, list[str]] = {}
        self.responses: dict[str, dict] = {}
        self.calls: list[dict[str, str]] = []
        self.active = self.max_active = 0
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def hits(self, query: str) -> int:
        return sum(c.get("q") == query for c in self.calls)

    def _reply(self, params: dict[str, str]) -> tuple[int, bytes]:
        query = params.get("q", "")
        fault = self.faults.get(query, []).pop(0) if self.faults.get(query) else None
        with self._lock:
            self._arrivals += 1
            due = int(self._arrivals * self.fault_rate) > int((self._arrivals - 1)
                                                                * self.fault_rate)
            if fault is None and due:
                fault = self.RANDOM_FAULTS[next(self._kinds) % len(self.RANDOM_FAULTS)]
                self.injected[fault] = self.injected.get(fault, 0) + 1
        if fault == "timeout":
            time.sleep(self.hang)
        if fault in ("429", "500"):
            return int(fault), json.dumps({"error": "busy"}).encode()
        if fault == "malformed":
            return 200, b'{"organic_results": [{"snippet": '
        if fault == "error":
            return 200, json.dumps({"error": "Internal error, please retry"}).encode()
        if fault == "401":
            return 401, json.dumps({"error": "Invalid API key. Your API key should be here: "
                                             "https://serpapi.com/manage-api-key"}).encode()
        if fault == "quota":
            return 429, json.dumps({"error": "Your account has run out of searches."}).encode()
        if fault in ("wrong_box", "wrong_organic", "wrong_words"):
            data = {"wrong_box": {"answer_box": "str"}, "wrong_organic": {"organic_results":
                    {"a": 1}}, "wrong_words": {"answer_box": {"snippet_highlighted_words": 3}}}
            return 200, json.dumps(data[fault]).encode()
        if fault in ("truncated", "badgzip"):
            return 200, fault.encode()  # the handler sends these wrong on purpose
        if fault == "noresults":
            reply = {"error": "Google hasn't returned any results for this query."}
            return 200, json.dumps(reply).encode()
        data = self.responses.get(query, {"organic_results": [{"snippet": f"Result for {query}"}]})
        return 200, json.dumps({"search_metadata": {"status": "Success"}, **data}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                params = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                with server._lock:
                    server.calls.append(params)
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    time.sleep(server.latency)
                    status, body = server._reply(params)
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    if body == b"badgzip":  # says gzip, is not
                        self.send_header("Content-Encoding", "gzip")
                    # truncated: promises more bytes than it sends, then hangs up
                    length = len(body) + (100 if body == b"truncated" else 0)
                    self.send_header("Content-Length", str(length))
                    self.end_headers()
                    self.wfile.write(body)
                    if body == b"truncated":
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass
                finally:
                    with server._lock:
                        server.active -= 1

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
