"""What the benchmarks read off (or do to) a running process and its ZooKeeper server.

- ``paused(pid)``: the process stopped (SIGSTOP) for a ``with`` block,
  resumed (SIGCONT) after it; messages sent to it meanwhile wait in its queue.
- ``rss_bytes(pid)``: the process's resident memory (``VmRSS``).
- ``cpu_seconds(pid)``: the CPU time the process (all its threads) used so
  far, user and system; ``broker_pid()`` the local RabbitMQ's Erlang VM.
- ``zookeeper_requests(server, pid)``: per ZooKeeper session of the process,
  the client's last request id (``lcxid`` in the server's ``cons`` answer).
  Clients number their requests 1, 2, 3, ... and pings do not count, so the
  difference of two readings is the number of reads and writes the process
  sent in between (on any connection of the session).  The process's
  sessions are the server connections whose client port is one of the
  process's own TCP sockets (``/proc/<pid>/fd`` and ``/proc/<pid>/net/tcp``).
- ``zookeeper_monitor(server)``: the server's own counters (the ``mntr``
  four-letter word): ``zk_znode_count``, ``zk_approximate_data_size`` (the
  bytes of every znode's path and data), ``zk_watch_count``, ...

Linux only (``/proc``), as the benchmarks' machine is.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Iterator, Mapping
from typing import Any

_CONNECTION = re.compile(r"^\s*/[^:]+:(\d+)\[\d+\]\((.*)\)\s*$")


class ProbeError(RuntimeError):
    """A process or server could not be read (names which and why)."""


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """Process ``pid`` stopped for the block (SIGSTOP), running again after it (SIGCONT)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def rss_bytes(pid: int) -> int:
    """The resident set size of process ``pid``, in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        raise ProbeError(f"process {pid} is not running") from None
    raise ProbeError(f"process {pid} has no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """The CPU seconds (user + system, every thread) process ``pid`` has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        raise ProbeError(f"process {pid} is not running") from None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The pid of the local RabbitMQ node's Erlang VM (``beam.smp``), or None."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"beam.smp") and any(b"rabbit" in a for a in argv):
            return int(entry)
    return None


def socket_ports(pid: int, remote_port: int) -> set[int]:
    """The local ports of ``pid``'s TCP connections to ``remote_port`` (IPv4 and IPv6)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        raise ProbeError(f"process {pid} is not running") from None
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed in the meantime
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            cols = row.split()
            local, remote, inode = cols[1], cols[2], cols[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def parse_cons(answer: str) -> dict[int, dict[str, str]]:
    """The server's ``cons`` answer as client port -> that connection's fields."""
    connections = {}
    for line in answer.splitlines():
        match = _CONNECTION.match(line)
        if match is None:
            continue
        fields = dict(f.split("=", 1) for f in match.group(2).split(",") if "=" in f)
        connections[int(match.group(1))] = fields
    return connections


def zookeeper_requests(server: Any, pid: int) -> dict[str, int]:
    """Session id -> last request id, for every ZooKeeper session of process ``pid``.

    ``server`` is the test kit's ``ZooKeeperServer`` (its ``cons`` four-letter
    word is allowed).  Read it when the process is idle: a request still in
    flight is counted in the next reading.
    """
    from tests.zk_server import four_letter_word

    ports = socket_ports(pid, server.port)
    sessions = {}
    for port, fields in parse_cons(four_letter_word(server.host, server.port, "cons")).items():
        if port in ports and "sid" in fields and "lcxid" in fields:
            sessions[fields["sid"]] = int(fields["lcxid"], 16)
    if not sessions:
        raise ProbeError(f"process {pid} has no session on ZooKeeper {server.hosts}")
    return sessions


def requests_between(before: Mapping[str, int], after: Mapping[str, int]) -> int:
    """Requests sent between two ``zookeeper_requests`` readings (a new session from 0)."""
    return sum(last - before.get(sid, 0) for sid, last in after.items())


def parse_mntr(answer: str) -> dict[str, str]:
    """The server's ``mntr`` answer as counter name -> its value (as text)."""
    found = {}
    for line in answer.splitlines():
        name, tab, value = line.partition("\t")
        if tab and name.strip():
            found[name.strip()] = value.strip()
    return found


def zookeeper_monitor(server: Any) -> dict[str, int]:
    """The numeric counters of the server's ``mntr`` answer (``zk_znode_count``, ...).

    ``server`` is the test kit's ``ZooKeeperServer`` (its whitelist allows
    ``mntr``); ProbeError if the answer holds no ``zk_znode_count``.
    """
    from tests.zk_server import four_letter_word

    answer = four_letter_word(server.host, server.port, "mntr", timeout=5.0)
    numbers = {}
    for name, value in parse_mntr(answer).items():
        with contextlib.suppress(ValueError):
            numbers[name] = int(value)
    if "zk_znode_count" not in numbers:
        raise ProbeError(f"ZooKeeper {server.hosts} gave no mntr counters: {answer[:200]!r}")
    return numbers
