"""One ``epum-worker`` process for a benchmark: its config, start, pause, memory, stop.

``WorkerProcess(url, names, zk_hosts, zk_path, workdir)`` writes a config
(the ZooKeeper store under ``zk_path``, the benchmark's sysname, the given
prefetch) and starts ``epum-worker`` from this interpreter's venv; ``start``
returns once the service answers.  Its log goes to ``workdir/worker.log``
(shown in the error when it fails).  The timed loops are an hour apart, so
every decider pass the benchmark sees is one a change woke (the path the
replacement of a failed instance takes) and no timed pass, doctor or reaper
adds ZooKeeper requests to what the messages cost.

``bench.probes.paused(worker.pid)`` stops the whole process for a block:
messages published meanwhile wait in the service queue, so the benchmark
can time a drain of a full queue.  Keep pauses well under the ZooKeeper
session ``timeout``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.probes import rss_bytes
from epum.messaging import EPUManagementClient, NoSuchServiceError, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names

SERVICE = "epu_management_service"
LOOPS_APART = 3600.0


class WorkerProcess:
    """An ``epum-worker`` subprocess on a ZooKeeper store (a context manager)."""

    def __init__(
        self,
        url: str,
        names: Names,
        zk_hosts: str,
        zk_path: str,
        workdir: Path,
        *,
        prefetch: int = 1,
        zk_timeout: float = 30.0,
    ):
        self.url = url
        self.names = names
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "worker.yaml"
        self.log_path = self.workdir / "worker.log"
        self.prefetch = prefetch
        config = {
            "server": {
                "amqp": {"url": url, "sysname": names.sysname, "prefetch": prefetch},
                "zookeeper": {"hosts": zk_hosts, "path": zk_path, "timeout": zk_timeout},
            },
            "epumanagement": {
                "service_name": SERVICE,
                "persistence_type": "zookeeper",
                "decider_loop_interval": LOOPS_APART,
                "doctor_loop_interval": LOOPS_APART,
                "reaper_loop_interval": LOOPS_APART,
            },
            "worker_name": f"{names.sysname}-worker",
            "log_level": "INFO",
        }
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The worker's process id (once started)."""
        assert self.proc is not None, "not started"
        return self.proc.pid

    def rss(self) -> int:
        """The worker's resident memory now, in bytes."""
        return rss_bytes(self.pid)

    def start(self, client: EPUManagementClient, timeout: float = 60.0) -> None:
        """Start the worker; return once ``client`` gets an answer from it."""
        worker = Path(sys.executable).parent / "epum-worker"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(worker), "--config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.list_domain_definitions()
                return
            except NoSuchServiceError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the worker never answered:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the worker's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the worker (resumed first if paused); SIGKILL if it does not exit."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def epum_client(url: str, names: Names, sender: str, timeout: float = 30.0) -> EPUManagementClient:
    """A client of the worker's service (close it with ``client.rpc.close()``)."""
    rpc = RpcClient(make_connection(url, name=f"{names.sysname}-{sender}"), names, sender)
    return EPUManagementClient(rpc, SERVICE, timeout=timeout)
