"""A loopback OpenAI-compatible ``/v1/completions`` server that answers from a local HF model
(or from a ``respond(prompt) -> text`` function, to measure the harness without a model).

It lets ``lm_eval --model local-completions`` run for real in tests, and it counts the
requests it serves, so a test can prove that a cached rerun sends none.  ``latency`` is
added to every request: seconds, or a ``(low, high)`` range drawn per request (seeded).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog (5) resets a burst of concurrent requests
    daemon_threads = True


class CompletionServer:
    def __init__(self, model_dir: str | None, latency: float | tuple[float, float] = 0.0,
                 respond: Callable[[str], str] | None = None, seed: int = 0,
                 usage: Callable[[list[str]], dict] | None = None) -> None:
        self.latency = latency  # seconds added to every request, or a (low, high) range
        self.respond = respond
        self.usage = usage  # the reply's ``usage`` (the server's token counts) for its prompts
        # a broken server: every reply has this HTTP status, or this JSON body, when set
        self.status: int | None = None
        self.body: dict | None = None
        self._rng = random.Random(seed)
        if respond is None:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
            self.tokenizer.padding_side = "left"
            self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.requests = 0
        self.started = 0  # requests received, counted before the latency
        self.prompts = 0
        self.seeds: list[int | None] = []  # the ``seed`` of every request, in arrival order
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1/completions"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def delay(self) -> float:
        if isinstance(self.latency, tuple):
            with self._lock:
                return self._rng.uniform(*self.latency)
        return self.latency

    def complete(self, prompts: list[str], max_tokens: int, stop: list[str]) -> list[str]:
        if self.respond is not None:
            return [self.respond(p) for p in prompts]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = self.model.generate(
                **batch, max_new_tokens=max_tokens, do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        texts = self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:],
                                            skip_special_tokens=True)
        for s in stop:
            texts = [t.split(s, 1)[0] for t in texts]
        return texts

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                with server._lock:
                    server.started += 1
                time.sleep(server.delay())
                with server._lock:
                    server.requests += 1
                    server.prompts += len(prompts)
                    server.seeds.append(body.get("seed"))
                    texts = server.complete(
                        prompts, body.get("max_tokens", 64), body.get("stop") or []
                    )
                payload = json.dumps(server.body or {
                    "id": "cmpl-test", "object": "text_completion", "model": body.get("model"),
                    "choices": [{"index": i, "text": t, "finish_reason": "stop"}
                                for i, t in enumerate(texts)],
                    **({"usage": server.usage(prompts)} if server.usage else {}),
                }).encode()
                self.send_response(server.status or 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # no remote tokenizer endpoint: lm-eval falls back to HF
                self.send_response(404)
                self.end_headers()

        return Handler

    def settle(self, timeout: float = 60) -> None:
        """Wait until every request received has been answered (one a killed client left
        in flight included), however long the machine takes."""
        deadline = time.time() + timeout
        while self.requests < self.started:
            assert time.time() < deadline, "the server never answered its requests"
            time.sleep(0.02)

    def close(self) -> None:
        self.httpd.shutdown()


class ChatServer:
    """A loopback OpenAI-compatible ``/v1/chat/completions`` server whose replies are
    ``respond(messages, tools) -> message`` (an assistant message: ``content`` and
    ``tool_calls`` as the chat API carries them).  It keeps every request body, so a test
    reads what the harness sent: the conversation, the tool schemas, the seeds.  ``usage``,
    where given, is the reply's ``usage`` (the server's token counts) for those messages."""

    def __init__(self, respond: Callable[[list[dict], list[dict]], dict],
                 usage: Callable[[list[dict]], dict | None] | None = None) -> None:
        self.respond = respond
        self.usage = usage
        self.bodies: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.bodies.append(body)
                message = {"role": "assistant", **server.respond(body["messages"],
                                                                 body.get("tools") or [])}
                usage = server.usage(body["messages"]) if server.usage else None
                payload = json.dumps({"id": "chat-test", "object": "chat.completion",
                                      "choices": [{"index": 0, "message": message,
                                                   "finish_reason": "stop"}],
                                      **({"usage": usage} if usage else {})}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}/v1/chat/completions"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
