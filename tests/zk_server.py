"""A real ZooKeeper for tests, and the faults to inflict on it.

``ZooKeeperServer`` runs Debian's ZooKeeper (``scripts/setup`` installs it)
as a JVM subprocess on a free port with a temporary data dir, the admin
server off and a configurable ``tickTime`` (500 ms by default, so sessions
may be as short as 1 s for expiry tests; the server clamps session timeouts
to 2..20 ticks).  Its output goes to a log file that ``log_since`` returns,
so a failing test can print what the server saw.

Faults:

- ``ZooKeeperServer.pause`` / ``resume``: SIGSTOP / SIGCONT the JVM (every
  client stalls, as in a partition of the whole server);
  ``restart``: stop it and start it again on the same port and data dir
  (every client loses its connection; sessions survive).
- ``TcpProxy`` (``tests/tcp_proxy.py``): clients that connect through it
  can be cut off alone: ``cut()`` closes their connections (they reconnect
  at once, the session survives), ``block()`` / ``unblock()`` stall them (a
  partition: past the session timeout the server expires their sessions;
  ``held_while_blocked`` counts their attempts to reconnect meanwhile).
- ``expire_session(client, hosts)``: expire a client's session for real
  (a second client takes the session over with its id and password and
  closes it), then wait until the first client has seen LOST.

The pytest fixtures that use these (``zk_server``, ``zk_base_path``,
``zk_proxy``, ``zk_store_factory``) are defined at the end and imported by
``tests/integration/conftest.py``.  Waiting on a condition is
``tests.kit.wait_until``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import WaitTimeout, wait_until
from tests.tcp_proxy import TcpProxy

__all__ = ["TcpProxy", "ZooKeeperServer", "expire_session", "wait_until"]

#: Jars of Debian's zookeeper package a standalone server needs; the
#: zookeeper jar's manifest names the rest (netty, jute, slf4j-api, ...).
DEFAULT_JARS = (
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
)

_LOG4J = """\
log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} %-5p [%t:%C{1}@%L] - %m%n
"""

INSTALL_HINT = "ZooKeeper is not installed: run scripts/setup (as root)"


class ZooKeeperUnavailable(RuntimeError):
    """No usable ZooKeeper installation (java or the jars are missing)."""


def zookeeper_classpath() -> str:
    """The server classpath: ``$EPUM_ZOOKEEPER_CLASSPATH`` or Debian's jars.

    Raises ``ZooKeeperUnavailable`` naming the install script when a jar or
    java is missing.
    """
    override = os.environ.get("EPUM_ZOOKEEPER_CLASSPATH")
    if override:
        return override
    missing = [jar for jar in DEFAULT_JARS if not os.path.exists(jar)]
    if missing:
        raise ZooKeeperUnavailable(f"{INSTALL_HINT} (missing {', '.join(missing)})")
    return ":".join(DEFAULT_JARS)


def free_port() -> int:
    """A TCP port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def four_letter_word(host: str, port: int, word: str, timeout: float = 1.0) -> str:
    """Send a four-letter command (``srvr``, ``ruok``) and return the answer."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(word.encode())
        chunks = []
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


class ZooKeeperServer:
    """One standalone ZooKeeper server in a JVM of its own.

    ``hosts`` is the connection string for clients; ``heap_mb`` bounds the
    JVM's heap (the default suits the tests; a benchmark holding a hundred
    thousand records asks for more).  ``start`` returns once
    the server answers ``srvr`` as serving; ``stop`` terminates it (SIGTERM,
    then SIGKILL) and keeps the data dir so ``start`` can bring the same
    server back; ``close`` also deletes the data dir.
    """

    def __init__(self, tick_time_ms: int = 500, port: int | None = None, heap_mb: int = 256):
        self.tick_time_ms = tick_time_ms
        self.heap_mb = heap_mb
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.workdir = Path(tempfile.mkdtemp(prefix="epum-zk-"))
        self.log_path = self.workdir / "zookeeper.log"
        self._proc: subprocess.Popen | None = None
        self._paused = False
        (self.workdir / "data").mkdir()
        (self.workdir / "log4j.properties").write_text(_LOG4J)
        (self.workdir / "zoo.cfg").write_text(
            "\n".join(
                [
                    f"tickTime={tick_time_ms}",
                    f"dataDir={self.workdir / 'data'}",
                    f"clientPort={self.port}",
                    f"clientPortAddress={self.host}",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=srvr,ruok,cons,stat,mntr",
                    "maxClientCnxns=0",
                    # Tests need no durability against power loss: skip the fsyncs.
                    "forceSync=no",
                    "",
                ]
            )
        )

    @property
    def hosts(self) -> str:
        """``host:port`` for a client (no chroot)."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True while the JVM process is alive (paused or not)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the JVM and wait until the server serves clients."""
        if self.running:
            return
        java = shutil.which("java")
        if java is None:
            raise ZooKeeperUnavailable("java is not installed: " + INSTALL_HINT)
        classpath = zookeeper_classpath()
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process owns it
        try:
            self._proc = subprocess.Popen(
                [
                    java,
                    f"-Xmx{self.heap_mb}m",
                    "-XX:+UseSerialGC",
                    f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                    "-Dzookeeper.admin.enableServer=false",
                    "-cp",
                    classpath,
                    "org.apache.zookeeper.server.ZooKeeperServerMain",
                    str(self.workdir / "zoo.cfg"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self._paused = False
        proc = self._proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"ZooKeeper exited with {proc.returncode}:\n{self.log_since(0)[-4000:]}"
                )
            return self.serving()

        try:
            wait_until(up, timeout, "ZooKeeper to serve", interval=0.05)
        except WaitTimeout:
            self.stop()
            raise RuntimeError(
                f"ZooKeeper did not start in {timeout}s:\n{self.log_since(0)[-4000:]}"
            ) from None

    def serving(self) -> bool:
        """True if the server answers ``srvr`` as a serving standalone server."""
        try:
            return "Mode:" in four_letter_word(self.host, self.port, "srvr", timeout=0.5)
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the JVM (SIGTERM, SIGKILL after ``timeout``); keep the data."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._paused:
            self._signal(proc, signal.SIGCONT)
            self._paused = False
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the JVM at once (a crash); keep the data."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self._paused = False

    def restart(self) -> None:
        """Stop and start again on the same port and data dir (sessions survive)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP the JVM: every client stalls until ``resume``."""
        if self._proc is not None:
            self._signal(self._proc, signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused JVM."""
        if self._proc is not None and self._paused:
            self._signal(self._proc, signal.SIGCONT)
            self._paused = False

    def close(self) -> None:
        """Stop the server and delete its data dir and log."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_size(self) -> int:
        """The log's current size, an offset for ``log_since``."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        """What the server logged from ``offset`` on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)


def expire_session(client, hosts: str, timeout: float = 10.0) -> None:
    """Expire ``client``'s ZooKeeper session for real and wait until it sees LOST.

    A second client takes the session over (same id and password), which
    drops the first one's connection, and closes it, which makes the server
    end the session and delete its ephemeral nodes.  ``hosts`` must reach
    the server directly (not through a blocked proxy).
    """
    from kazoo.client import KazooClient
    from kazoo.protocol.states import KazooState

    lost = threading.Event()

    def watch(state):
        if state == KazooState.LOST:
            lost.set()
            return True
        return None

    deadline = time.monotonic() + timeout
    client.add_listener(watch)
    try:
        while not lost.is_set():
            # reconnecting: wait for a session to steal
            left = max(0.001, deadline - time.monotonic())
            client_id = wait_until(lambda: client.client_id, left, "the client to reconnect")
            thief = KazooClient(hosts, client_id=client_id, timeout=1.0)
            thief.start(timeout=5)
            thief.stop()
            thief.close()
            if lost.wait(min(3.0, max(0.1, deadline - time.monotonic()))):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the session did not expire")
    finally:
        client.remove_listener(watch)


#: The old name of ``tests.kit.wait_until``, kept importable (the same function,
#: not a copy) until every branch that imports it from here has been merged.


# fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def zk_server() -> Iterator[ZooKeeperServer]:
    """One ZooKeeper server (tickTime 500 ms) for the whole test session."""
    try:
        server = ZooKeeperServer(tick_time_ms=500)
    except ZooKeeperUnavailable as exc:  # pragma: no cover - depends on the machine
        pytest.fail(str(exc))
    try:
        server.start()
    except ZooKeeperUnavailable as exc:  # pragma: no cover - depends on the machine
        server.close()
        pytest.fail(str(exc))
    yield server
    server.close()


@pytest.fixture
def zk_base_path(request, zk_server: ZooKeeperServer) -> Iterator[str]:
    """A fresh base path for one test; the server's log is printed if it fails."""
    offset = zk_server.log_size()
    path = f"/epum-tests/{request.node.name[:40].replace('/', '_')}-{uuid.uuid4().hex[:12]}"
    yield path
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"----- ZooKeeper log during {request.node.nodeid} -----")
        print(zk_server.log_since(offset)[-20000:])


@pytest.fixture
def zk_proxy(zk_server: ZooKeeperServer) -> Iterator[TcpProxy]:
    """A ``TcpProxy`` to the session server, closed after the test.

    Ask for it before ``zk_store_factory`` so the stores behind it shut
    down while it still forwards (fixtures are torn down in reverse).
    """
    proxy = TcpProxy(zk_server.host, zk_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def zk_store_factory(zk_server: ZooKeeperServer, zk_base_path: str):
    """``make(**kwargs)`` -> an initialized ZooKeeperEPUMStore on the test's base path.

    ``worker_name`` goes to the store, every other keyword argument to its
    ``ZooKeeperSettings`` (``hosts`` defaults to the session server,
    ``base_path``, the settings' ``path``, to the test's); every store made
    is shut down after the test.
    """
    from epum.settings import ZooKeeperSettings
    from epum.store.zookeeper import ZooKeeperEPUMStore

    stores: list[ZooKeeperEPUMStore] = []

    def make(worker_name: str | None = None, **kwargs) -> ZooKeeperEPUMStore:
        kwargs.setdefault("hosts", zk_server.hosts)
        kwargs["path"] = kwargs.pop("base_path", zk_base_path)
        store = ZooKeeperEPUMStore(ZooKeeperSettings(**kwargs), worker_name=worker_name)
        stores.append(store)
        store.initialize()
        return store

    yield make
    for store in reversed(stores):
        store.shutdown()
