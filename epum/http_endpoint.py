"""The worker's local HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` and ``/readyz`` answer 200 when every one of their checks
holds and 503 otherwise, with a JSON body naming each check and its value;
``/metrics`` is the registry in the Prometheus text format.  The server is
the stdlib's threading HTTP server on a daemon thread; checks run on the
request's thread, so they must be cheap and never block (read a flag).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

#: A named set of checks: name -> a callable that says whether it holds.
Checks = Mapping[str, Callable[[], bool]]


def evaluate(checks: Checks) -> dict[str, bool]:
    """Each check's value; a check that raises counts as failing (and is logged)."""
    out = {}
    for name, check in checks.items():
        try:
            out[name] = bool(check())
        except Exception:
            log.exception("health check %s failed", name)
            out[name] = False
    return out


class HttpEndpoint:
    """Serves the health checks and the metrics on ``host:port`` until ``stop()``.

    ``port`` 0 takes a free port; ``port`` (after ``start()``) is the one bound.
    """

    def __init__(
        self,
        host: str,
        port: int,
        healthz: Checks,
        readyz: Checks,
        registry: CollectorRegistry,
    ):
        self.host = host
        self.port = port
        self.healthz = healthz
        self.readyz = readyz
        self.registry = registry
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve on a daemon thread; OSError when the port is taken."""
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http %s: " + format, self.address_string(), *args)

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="epum-http", daemon=True
        )
        self._thread.start()
        log.info("health and metrics on http://%s:%d/", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and release the port (waits for the serving thread)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
        self._server = None

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(request, 200, CONTENT_TYPE_LATEST, generate_latest(self.registry))
        elif path in ("/healthz", "/readyz"):
            results = evaluate(self.healthz if path == "/healthz" else self.readyz)
            ok = all(results.values())
            body = json.dumps({"ok": ok, "checks": results}, sort_keys=True).encode()
            self._send(request, 200 if ok else 503, "application/json", body + b"\n")
        else:
            self._send(request, 404, "text/plain", b"not found: try /healthz, /readyz, /metrics\n")

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, code: int, ctype: str, body: bytes) -> None:
        request.send_response(code)
        request.send_header("Content-Type", ctype)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
