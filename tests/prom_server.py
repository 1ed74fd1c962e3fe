"""A Prometheus server for tests (Debian package ``prometheus``) and an exporter.

``PrometheusServer`` starts ``prometheus`` on a free port with a temporary
config and data dir, scraping the given targets every second, and stops only
the process it started.  ``Exporter`` serves a registry of its own
(prometheus-client) on a free port, so tests never share metrics.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, start_http_server

from tests.kit import wait_until
from tests.zk_server import free_port

INSTALL_HINT = "prometheus is not installed (run scripts/setup as root)"


class Exporter:
    """A metrics endpoint on 127.0.0.1 serving ``registry`` (a fresh one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        self.port = free_port()
        self._server, self._thread = start_http_server(
            self.port, addr="127.0.0.1", registry=self.registry
        )

    @property
    def address(self) -> str:
        """``host:port`` of the endpoint (the ``instance`` label Prometheus gives it)."""
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class PrometheusServer:
    """One Prometheus process scraping ``targets`` every second."""

    def __init__(self, targets: list[str]):
        if not shutil.which("prometheus"):
            raise RuntimeError(INSTALL_HINT)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="epum-prom-"))
        self.log_path = self.workdir / "prometheus.log"
        quoted = ", ".join(f"'{t}'" for t in targets)
        (self.workdir / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            f"  - job_name: test\n    static_configs:\n      - targets: [{quoted}]\n"
        )
        self._proc: subprocess.Popen | None = None
        self._paused = False

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it is ready."""
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_for(lambda: requests.get(self.url + "/-/ready", timeout=1).ok, timeout)

    def wait_for_sample(self, expr: str, timeout: float = 30.0) -> None:
        """Wait until ``expr`` returns at least one series."""

        def has_sample() -> bool:
            body = requests.get(self.url + "/api/v1/query", params={"query": expr}, timeout=1)
            return bool(body.json()["data"]["result"])

        self.wait_for(has_sample, timeout)

    def wait_for(self, check, timeout: float) -> None:
        """Poll ``check`` until it is true; fail with the server's log otherwise."""

        def ready() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                return True  # exited: stop waiting, reported below
            try:
                return bool(check())
            except (requests.RequestException, KeyError, ValueError):
                return False

        with contextlib.suppress(AssertionError):
            wait_until(ready, timeout, what="prometheus to be ready", interval=0.2)
        if self._proc is not None and self._proc.poll() is None and self._safe(check):
            return
        raise RuntimeError(f"prometheus not ready: {self.log_path.read_text()[-2000:]}")

    @staticmethod
    def _safe(check) -> bool:
        try:
            return bool(check())
        except (requests.RequestException, KeyError, ValueError):
            return False

    def pause(self) -> None:
        """Make the server stop answering without closing its port (SIGSTOP to its process):
        connections are still accepted by the kernel, and no answer ever comes."""
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError("prometheus is not running")
        self._proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def stop(self) -> None:
        """Stop the process this object started and delete its files.

        A paused server is killed as it is: resumed, it would first answer
        the queries waiting on its port.
        """
        if self._proc is not None and self._proc.poll() is None:
            if self._paused:
                self._proc.kill()
            else:
                self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)
