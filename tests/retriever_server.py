"""A loopback retrieval server (Search-R1 / FlashRAG protocol) with scripted faults."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class RetrieverServer:
    """``POST /retrieve`` with ``{"queries", "topk", "return_scores"}``; each query gets one
    hit ``"Title <q>"\\nText about <q>`` unless ``empty`` holds it.  ``faults`` is consumed
    one per request: "500", "429", "malformed", "wrong_shape", "short" (one list too few)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.faults: list[str] = []
        self.empty: set[str] = set()
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/retrieve"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _reply(self, body: dict) -> tuple[int, bytes]:
        with self._lock:
            self.requests.append(body)
            fault = self.faults.pop(0) if self.faults else None
        if fault in ("500", "429"):
            return int(fault), b"busy"
        if fault == "malformed":
            return 200, b'{"result": [['
        if fault == "wrong_shape":
            return 200, json.dumps({"hits": []}).encode()
        queries = body["queries"][:-1] if fault == "short" else body["queries"]
        result = [[] if q in self.empty else [{
            "document": {"id": str(i), "contents": f'"Title {q}"\nText about {q}.'},
            "score": 1.0}] for i, q in enumerate(queries)]
        return 200, json.dumps({"result": result}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                status, body = server._reply(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
