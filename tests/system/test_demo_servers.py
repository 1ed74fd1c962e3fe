"""``epum demo --amqp URL --zookeeper HOSTS`` as a subprocess on the real broker and a
ZooKeeper of the test kit: the story on two worker processes and the simulated
provisioner, told plainly without a terminal and as a live table under one;
each run exits 0 and leaves nothing behind on either server."""

from __future__ import annotations

import errno
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from epum.sim.live import HOME_AND_CLEAR
from tests import rabbit, zk_server

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
zookeeper = zk_server.zk_server

EPUM = str(Path(sys.executable).parent / "epum")
STAGES = (
    "three running",
    "failed instance replaced",
    "silent instance replaced",
    "the other worker scaled it to five",
    "domain removed",
)
LIMIT = 300.0


def demo_paths(hosts: str) -> list[str]:
    """The demo namespaces left in ZooKeeper."""
    client = KazooClient(hosts=hosts)
    client.start(timeout=10)
    try:
        return [c for c in client.get_children("/") if c.startswith("epum-demo-")]
    finally:
        client.stop()
        client.close()


def test_the_story_on_real_servers_told_plainly(amqp_url, zookeeper):
    done = subprocess.run(
        [EPUM, "demo", "--amqp", amqp_url, "--zookeeper", zookeeper.hosts, "--history"],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert HOME_AND_CLEAR not in done.stdout
    for stage in STAGES:
        assert f"[ok] {stage}" in done.stdout
    assert "found missing by the doctor" in done.stdout  # the decision log, in words
    assert demo_paths(zookeeper.hosts) == []


def test_the_story_on_real_servers_as_a_live_table(amqp_url, zookeeper):
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [EPUM, "demo", "--amqp", amqp_url, "--zookeeper", zookeeper.hosts],
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = b""
    try:
        deadline = time.monotonic() + LIMIT
        while proc.poll() is None or select.select([main], [], [], 0)[0]:
            assert time.monotonic() < deadline, seen[-2000:]
            if select.select([main], [], [], 1.0)[0]:
                try:
                    seen += os.read(main, 65536)
                except OSError as exc:  # the child's end closed
                    if exc.errno != errno.EIO:
                        raise
                    break
        assert proc.wait(10) == 0, seen[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    text = seen.decode(errors="replace")
    assert text.count(HOME_AND_CLEAR) >= 3  # redrawn in place
    assert "INSTANCE" in text and "600-RUNNING" in text
    for stage in STAGES:
        assert f"[ok] {stage}" in text
    assert demo_paths(zookeeper.hosts) == []
