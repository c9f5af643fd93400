"""A loopback server speaking SerpAPI's JSON, with scripted faults and latency."""

from __future__ import annotations

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
    "malformed", "error" or "noresults"; when empty the call succeeds with
    ``responses[query]`` (default: an organic result naming the query)."""

    def __init__(self, latency: float = 0.0, hang: float = 1.0) -> None:
        self.latency, self.hang = latency, hang
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
        if fault == "timeout":
            time.sleep(self.hang)
        if fault in ("429", "500"):
            return int(fault), json.dumps({"error": "busy"}).encode()
        if fault == "malformed":
            return 200, b'{"organic_results": [{"snippet": '
        if fault == "error":
            return 200, json.dumps({"error": "Internal error, please retry"}).encode()
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
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass
                finally:
                    with server._lock:
                        server.active -= 1

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
