"""moto's server mode for tests: a local process speaking the AWS APIs (CloudWatch here).

Started on a free port as ``python -m moto.server``; stopped by the test
that started it.  Any keys are accepted.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from tests.kit import wait_until
from tests.zk_server import free_port


class MotoServer:
    """One moto server process on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="epum-moto-"))
        self.log_path = self.workdir / "moto.log"
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until it answers."""
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answers() -> bool:
            if self._proc.poll() is not None:
                return True  # exited: stop waiting, reported below
            try:
                requests.get(self.url + "/moto-api/", timeout=1)
            except requests.RequestException:
                return False
            return True

        with contextlib.suppress(AssertionError):
            wait_until(answers, timeout, what="moto server to answer", interval=0.2)
        if self._proc.poll() is None:
            return
        raise RuntimeError(f"moto server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        """Stop the process this object started."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)
