"""The epum-worker daemon as a subprocess with a config file, and epumctl against it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from epum.messaging import EPUManagementClient, NoSuchServiceError, RpcClient
from epum.messaging.connection import make_connection
from epum.messaging.names import Names
from tests import rabbit
from tests.kit import WaitTimeout, wait_until
from tests.rabbit import close_connections_named

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

BIN = Path(sys.executable).parent


class StderrReader:
    """A process's stderr, read as it comes on a thread of its own: a worker that logs
    more than a pipe holds never blocks on a full pipe (its logging would stop it)."""

    def __init__(self, proc: subprocess.Popen):
        self._lines: list[str] = []
        self._thread: threading.Thread | None = None
        if proc.stderr is not None:  # else it goes where the caller sent it
            self._thread = threading.Thread(
                target=self._read, args=(proc.stderr,), name="worker-stderr", daemon=True
            )
            self._thread.start()

    def _read(self, stream) -> None:
        with stream:
            for line in stream:
                self._lines.append(line)

    def text(self, timeout: float = 10.0) -> str:
        """Everything the process wrote, once it has closed its stderr (exited)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return "".join(self._lines)


class Daemon:
    """One epum-worker process and a client to talk to it."""

    def __init__(self, proc: subprocess.Popen, client: EPUManagementClient, worker_name: str):
        self.proc = proc
        self.client = client
        self.worker_name = worker_name
        self.stderr = StderrReader(proc)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> tuple[int, float, str]:
        """Signal the worker; (exit code, seconds to exit, its log)."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the worker did not exit within {timeout} s:\n{self.stderr.text()}")
        return self.proc.returncode, time.monotonic() - started, self.stderr.text()


def write_config(path: Path, names: Names, worker_name: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "server": {"amqp": {"sysname": names.sysname, "heartbeat": 10}},
                "epumanagement": {
                    "default_user": "ops",
                    "initial_definitions": {
                        "def1": {
                            "general": {"engine_class": "simplest"},
                            "engine_conf": {"epuworker_type": "dt", "force_site": "site1"},
                        }
                    },
                    "initial_domains": {
                        "broken": {"definition": "no-such-definition", "config": {}},
                        "dom1": {
                            "definition": "def1",
                            "config": {"engine_conf": {"preserve_n": 0}},
                        },
                    },
                },
                "worker_name": worker_name,
                "log_level": "INFO",
            }
        )
    )
    return path


def launch(amqp_url: str, names: Names, configs: list[Path], worker_name: str) -> Daemon:
    """Start ``epum-worker --config FILE ...`` and wait until its service answers."""
    env = {**os.environ, "EPUM_AMQP_URL": amqp_url}
    options = [arg for path in configs for arg in ("--config", str(path))]
    proc = subprocess.Popen(
        [str(BIN / "epum-worker"), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    rpc = RpcClient(make_connection(amqp_url), names, "tester", timeout=5)
    client = EPUManagementClient(rpc)

    def answered_or_exited() -> str | None:
        if proc.poll() is not None:
            return "it exited"
        try:
            client.list_domain_definitions()
        except NoSuchServiceError:
            return None
        return "answered"

    daemon = Daemon(proc, client, worker_name)
    try:
        outcome = wait_until(answered_or_exited, 20, "the worker to answer")
    except WaitTimeout:
        outcome = "timed out"
    if outcome != "answered":
        proc.kill()
        proc.wait()
        rpc.close()
        pytest.fail(f"the worker never answered ({outcome}):\n{daemon.stderr.text()}")
    return daemon


def finish(daemon: Daemon) -> None:
    """Kill the worker if it still runs; close the test's client."""
    if daemon.proc.poll() is None:
        daemon.proc.kill()
        daemon.proc.wait()
    daemon.stderr.text()  # its reader ends with the process's stderr
    daemon.client.rpc.close()


@pytest.fixture
def daemon(amqp_url: str, names: Names, tmp_path: Path) -> Iterator[Daemon]:
    worker_name = f"{names.sysname}-w1"
    config = write_config(tmp_path / "epum.yaml", names, worker_name)
    running = launch(amqp_url, names, [config], worker_name)
    try:
        yield running
    finally:
        finish(running)


def epumctl(amqp_url: str, names: Names, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "epumctl"), "--amqp-url", amqp_url, "--sysname", names.sysname, *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_daemon_answers_and_stops_cleanly_on_sigterm(daemon):
    assert daemon.client.list_domain_definitions() == ["def1"]
    assert daemon.client.list_domains() == ["dom1"]  # the broken one was skipped
    assert daemon.client.describe_domain("dom1")["name"] == "dom1"
    code, seconds, log = daemon.stop()
    assert code == 0
    assert seconds < 5
    assert "initial domain broken could not be loaded" in log
    assert "received SIGTERM" in log
    assert "guest:guest" not in log  # the broker password is masked
    assert "guest:****@" in log


def test_sigint_also_stops_cleanly(daemon):
    code, seconds, _ = daemon.stop(signal.SIGINT)
    assert (code, seconds < 5) == (0, True)


def test_the_daemon_survives_its_broker_connection_closed(daemon):
    assert close_connections_named(f"{daemon.worker_name}:server") == 1
    errors: list[Exception] = []

    def lists_again() -> bool:
        try:
            return daemon.client.list_domains(caller="ops") == ["dom1"]
        except Exception as exc:  # the worker is reconnecting: ask again
            errors.append(exc)
            return False

    wait_until(lists_again, 15, lambda: f"the worker to serve again (last error: {errors[-1:]})")
    assert daemon.proc.poll() is None
    code, _, log = daemon.stop()
    assert code == 0
    assert log.count("connected to broker") == 2, log  # at start, and after the cut


def test_epumctl_runs_operations_and_prints_json(amqp_url, names, daemon, tmp_path):
    listed = epumctl(amqp_url, names, "list-definitions")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == ["def1"]

    definition = tmp_path / "def2.yaml"
    definition.write_text("general: {engine_class: simplest}\nengine_conf: {epuworker_type: dt}\n")
    added = epumctl(amqp_url, names, "add-definition", "def2", str(definition))
    assert added.returncode == 0, added.stderr
    assert daemon.client.list_domain_definitions() == ["def1", "def2"]

    domain_config = tmp_path / "dom.yaml"
    domain_config.write_text("engine_conf: {preserve_n: 0}\n")
    created = epumctl(
        amqp_url,
        names,
        "--caller",
        "alice",
        "add-domain",
        "dom2",
        "--definition",
        "def2",
        "--config",
        str(domain_config),
    )
    assert created.returncode == 0, created.stderr
    described = epumctl(amqp_url, names, "--caller", "alice", "describe-domain", "dom2")
    assert json.loads(described.stdout)["name"] == "dom2"

    missing = epumctl(amqp_url, names, "remove-definition", "nope")
    assert missing.returncode == 3  # epumctl's exit code for not found
    assert "NotFoundError" in missing.stderr
    assert missing.stdout == ""


def test_epumctl_reports_a_service_that_is_not_running(amqp_url, names):
    result = epumctl(amqp_url, names, "list-domains")
    assert result.returncode == 7  # epumctl's exit code for cannot connect
    assert "NoSuchServiceError" in result.stderr


def test_epumctl_names_a_broker_url_it_cannot_use(names):
    result = epumctl("foo://operator:hunter2@mq-host.example//", names, "list-domains")
    assert result.returncode == 1
    assert "names no transport kombu knows" in result.stderr
    assert "Traceback" not in result.stderr
    for part in ("foo", "operator", "hunter2", "mq-host"):  # no part of the URL is echoed
        assert part not in result.stderr


def test_sigterm_while_the_broker_is_unreachable_still_exits_promptly(names, tmp_path):
    config = write_config(tmp_path / "epum.yaml", names, f"{names.sysname}-lonely")
    env = {**os.environ, "EPUM_AMQP_URL": "amqp://guest:secret@127.0.0.1:1//"}
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [str(BIN / "epum-worker"), "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            text=True,
        )
    try:
        # started, now retrying the broker with backoff
        wait_until(lambda: "broker unreachable" in log_path.read_text(), 20, "a broker retry")
        assert proc.poll() is None
        code, seconds, _ = Daemon(proc, None, "").stop()  # type: ignore[arg-type]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    log = log_path.read_text()
    assert code == 0 and seconds < 5
    assert "secret" not in log
