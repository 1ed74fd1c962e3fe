"""A RabbitMQ node of the test's own, to stop and start without touching the shared one.

The shared broker (``tests/rabbit.py``) serves every test at once, so no
test may restart it.  ``PrivateBroker`` runs Debian's ``rabbitmq-server``
as a second node (its own node name, port, distribution port, data and
log folders, no plugins) and stops only that node, by name, with
``rabbitmqctl -n``.  Its data folder outlives a restart, so durable queues
and persistent messages do too, as on a production broker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from tests.kit import WaitTimeout, wait_until
from tests.rabbit import broker_answers
from tests.zk_server import free_port

#: How long a start may take (about 7 s on the 2-core development machine).
START_TIMEOUT = 90.0


class PrivateBroker:
    """One private RabbitMQ node; ``url`` reaches it as guest; ``close()`` removes its data.

    Its folder is a fresh one under the system's temporary folder, not under
    pytest's (whose parents the ``rabbitmq`` user, the server's, may not enter).
    """

    def __init__(self) -> None:
        if not shutil.which("rabbitmq-server"):
            pytest.fail("rabbitmq-server is not installed (run scripts/setup)")
        self.folder = folder = Path(tempfile.mkdtemp(prefix="epum-rabbit-"))
        self.port = free_port()
        self.node = f"epumtest{uuid.uuid4().hex[:8]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (folder / "plugins").write_text("[].\n")
        (folder / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        if os.geteuid() == 0:  # the server script drops to the rabbitmq user
            shutil.chown(folder, "rabbitmq")
            for child in folder.iterdir():
                shutil.chown(child, "rabbitmq")
        self._proc: subprocess.Popen | None = None

    def _env(self) -> dict[str, str]:
        base = self.folder
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "plugins"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(base / "feature_flags"),
            "RABBITMQ_PID_FILE": str(base / "pid"),
        }

    def start(self) -> None:
        """Start the node and return once it accepts AMQP connections."""
        with open(self.folder / "server.out", "a") as out:
            self._proc = subprocess.Popen(
                ["rabbitmq-server"], env=self._env(), stdout=out, stderr=subprocess.STDOUT
            )
        proc = self._proc

        def up() -> bool:
            if proc.poll() is not None:
                raise WaitTimeout(f"rabbitmq-server exited with {proc.returncode}")
            return broker_answers(self.url, timeout=1.0)

        try:
            wait_until(up, START_TIMEOUT, interval=0.25)
        except WaitTimeout as exc:
            tail = (self.folder / "server.out").read_text()[-2000:]
            pytest.fail(f"the private RabbitMQ node did not start ({exc}):\n{tail}")

    def stop(self) -> None:
        """Stop the node (only this one, by its name) and wait for its process to end."""
        if self._proc is None or self._proc.poll() is not None:
            return
        subprocess.run(
            ["rabbitmqctl", "-n", self.node, "stop"],
            env=self._env(),
            capture_output=True,
            check=False,
            timeout=60,
        )
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)

    def close(self) -> None:
        """Stop the node and remove its folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
