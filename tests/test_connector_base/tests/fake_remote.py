"""A tiny remote API on 127.0.0.1 for the test connector, with scripted faults."""

import json
import re
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRemote:
    """The test connector's remote: GET /ping, GET /partners/<id>, GET
    /vouchers/<code>, GET and POST /scores.

    ``script(path, *answers)`` queues canned answers ``(status, headers, body)``
    for requests whose path starts with ``path``; ``down`` answers 503 to
    everything; ``refuse`` is a set of score keys the remote rejects;
    ``on_request``, when set, is called with each request's path before it
    is answered (a test's clock moved by each call). Every request is logged
    in ``requests`` as ``(method, path, headers, json)``.
    """

    def __init__(self):
        self.requests = []
        self.client_ports = []
        self.scripts = defaultdict(deque)
        self.down = False
        self.refuse = set()
        self.scores = {}
        self.on_request = None
        remote = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so session reuse shows

            def log_message(self, *args):  # keep the Odoo log clean
                pass

            def do_GET(self):
                remote._handle(self, None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                remote._handle(self, json.loads(self.rfile.read(length) or b"null"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def script(self, path, *answers):
        self.scripts[path].extend(answers)

    def calls(self, path):
        return [r for r in self.requests if r[1].startswith(path)]

    def _handle(self, handler, body):
        path = handler.path
        self.requests.append((handler.command, path, dict(handler.headers), body))
        self.client_ports.append(handler.client_address[1])
        if self.on_request:
            self.on_request(path)
        status, headers, payload = answer = self._answer(handler.command, path, body)
        if status == "hold":  # answer nothing for ``headers`` seconds
            time.sleep(answer[1])
            return
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        handler.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(self, method, path, body):
        for prefix, answers in self.scripts.items():
            if path.startswith(prefix) and answers:
                answer = answers.popleft()
                return answer if len(answer) == 3 else (*answer, None)
        if self.down:
            return 503, {}, {"error": "service unavailable"}
        if path == "/scores" and method == "GET":
            return 200, {}, dict(self.scores)
        if path.split("?")[0] == "/ping":
            return 200, {}, {"service": "test remote"}
        if match := re.fullmatch(r"/partners/(\d+)", path):
            return 200, {}, {"id": int(match[1]), "ref": f"REF-{match[1]}"}
        if match := re.fullmatch(r"/vouchers/([\w-]+)", path):
            return 200, {}, {"code": match[1], "value": 5.0}
        if path == "/scores" and method == "POST":
            results = []
            for score in body["scores"]:
                ok = score["key"] not in self.refuse
                if ok:
                    self.scores[score["key"]] = score["score"]
                results.append(
                    {"key": score["key"], "ok": ok, "error": None if ok else "unknown key"}
                )
            return 200, {}, {"results": results}
        return 404, {}, {"error": "not found"}
