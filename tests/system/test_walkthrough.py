"""The README's ten-minute walk-through, run as written: its block after
``<!-- walkthrough -->`` runs in bash, in order, from the repository's root,
against the real broker and a ZooKeeper of the test kit, with a namespace
and ports of the test's own; every command must succeed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from epum.messaging.names import Names
from tests import rabbit, zk_server
from tests.zk_server import free_port

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server

ROOT = Path(__file__).resolve().parents[2]
MARK = "<!-- walkthrough -->"
#: On any way out, the script stops what it started in the background.
PROLOGUE = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"


def walkthrough() -> str:
    """The README's walk-through block, as it is written there."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(re.escape(MARK) + r"\s*```sh\n(.*?)```", readme, re.S)
    assert found, f"README.md has no ```sh block after {MARK}"
    return found.group(1)


def test_the_readme_walkthrough_runs_as_written(amqp_url, names: Names, zookeeper, tmp_path):
    script = tmp_path / "walkthrough.sh"
    script.write_text(PROLOGUE + walkthrough())
    env = {
        **os.environ,
        "EPUM_AMQP_URL": amqp_url,
        "EPUM_ZOOKEEPER_HOSTS": zookeeper.hosts,
        "EPUM_SYSNAME": names.sysname,
        "P1": str(free_port()),
        "P2": str(free_port()),
        "TMPDIR": str(tmp_path),  # its mktemp -d, and so the workers' logs, land here
    }
    done = subprocess.run(
        ["bash", str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    logs = "".join(
        f"----- {log.name}\n{log.read_text()[-3000:]}\n" for log in sorted(tmp_path.rglob("*.log"))
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{logs}"
    out = done.stdout
    assert "domain pool: 2 running" in out and "domain pool: 3 running" in out
    print(out)
    assert "decider" in out  # epumctl status names who leads each role
    assert re.search(r"^epum_launches_total \d", out, re.M)
    assert "fail " in out and ": done" in out
    assert "failed at" in out  # the history tells of the failure, in words
