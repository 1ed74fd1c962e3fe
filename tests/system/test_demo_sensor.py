"""``epum demo --story sensor --amqp URL`` as a subprocess on the real broker: the
README's line as written (through ``scripts/demo``), and with ``--zookeeper``
on a ZooKeeper of the test kit.  The worker and the simulated provisioner run
as processes, the domain grows to its maximum on the backlog and shrinks back
to one once the simulated instances drained it; each run exits 0, its
decision log says why, and it leaves no queue (or ZooKeeper path) behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection

from epum.sim.demo_sensor import MAXIMUM, MINIMUM
from tests import rabbit, zk_server
from tests.system.test_demo_servers import demo_paths

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
zookeeper = zk_server.zk_server

EPUM = str(Path(sys.executable).parent / "epum")
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
STAGES = (
    "the worker serves",
    "one instance, consuming the empty queue",
    f"grown to {MAXIMUM} under the backlog",
    "the queue drained, back to one instance",
    "domain removed",
)
LIMIT = 240.0


def queue_exists(url: str, name: str) -> bool:
    with Connection(url) as conn:
        try:
            conn.default_channel.queue_declare(queue=name, passive=True)
        except conn.channel_errors:
            return False
        return True


def check_story(out: str, url: str) -> None:
    """Every stage done; the sizes seen went up to the maximum, step by step, and
    back; the decision log scaled on the backlog; the demo's queues are gone."""
    for stage in STAGES:
        assert f"[ok] {stage}" in out, out
    found = re.search(r"sizes seen: ([\d >-]+)$", out, re.M)
    assert found, out
    sizes = [int(n) for n in found.group(1).split(" -> ")]
    peak = sizes.index(MAXIMUM)
    assert sizes[:peak] == sorted(sizes[:peak]) and sizes[0] <= MINIMUM, sizes
    assert sizes[peak:] == sorted(sizes[peak:], reverse=True) and sizes[-1] == MINIMUM, sizes
    assert "above 10: scaling by +1" in out and "below 1: scaling by -1" in out
    print(f"sizes seen: {sizes}")
    queue = re.search(r"on the backlog of (epum-demo-[0-9a-f]+)\.jobs", out)
    assert queue, out
    sysname = queue.group(1)
    assert not queue_exists(url, f"{sysname}.jobs")
    assert not queue_exists(url, f"{sysname}.epu_management_service")


def readme_command() -> str:
    """The README's command for the sensor story, as it is written there."""
    found = re.search(r"^scripts/demo --story sensor --amqp (\S+)$", README.read_text(), re.M)
    assert found, "README.md has no line 'scripts/demo --story sensor --amqp URL'"
    return found.group(0)


def test_the_readme_sensor_story_on_the_broker(amqp_url):
    # the README's line as written, on the test's broker (the same by default)
    command = readme_command().rsplit(" ", 1)[0] + f" {amqp_url} --history"
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=LIMIT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check_story(done.stdout, amqp_url)


@pytest.mark.zookeeper
def test_the_sensor_story_with_the_worker_on_zookeeper(amqp_url, zookeeper):
    argv = [EPUM, "demo", "--story", "sensor", "--amqp", amqp_url, "--zookeeper"]
    done = subprocess.run(
        [*argv, zookeeper.hosts, "--history"],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    check_story(done.stdout, amqp_url)
    assert demo_paths(zookeeper.hosts) == []
