"""A local HTTP server answering canned JSON, recording what it was asked.

Used where the real server cannot run on this machine (OpenTSDB has no
Debian package) and to see the headers a source sends.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: (method, path with query, headers, JSON body or None) -> (status, JSON answer);
#: an answer of bytes is sent as it is (a body that is not JSON).
Responder = Callable[[str, str, dict[str, str], Any], tuple[int, Any]]


class HTTPStub:
    """Serves ``responder``'s answers on 127.0.0.1:<free port>; ``requests`` lists the calls."""

    def __init__(self, responder: Responder):
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                headers = dict(self.headers.items())
                stub.requests.append((self.command, self.path, headers, body))
                status, answer = responder(self.command, self.path, headers, body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
