"""epumctl as a subprocess against a real worker: every command, both output modes,
each exit code provoked for real, and ``--watch`` under a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time

import pytest
import yaml
from kombu import Connection, Queue

from epum.messaging.connection import exchange
from tests import rabbit
from tests.system.test_worker import BIN, daemon, epumctl  # noqa: F401 (the fixture)
from tests.zk_server import free_port

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names


def ctl(amqp_url, names, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    if stdin is None:
        return epumctl(amqp_url, names, *args)
    return subprocess.run(
        [str(BIN / "epumctl"), "--amqp-url", amqp_url, "--sysname", names.sysname, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
    )


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_command_in_table_and_json(amqp_url, names, daemon, tmp_path):  # noqa: F811
    c = lambda *a, **k: ctl(amqp_url, names, *a, **k)  # noqa: E731
    assert ok(c("definition", "list")) == "def1\n"
    assert json.loads(ok(c("definition", "list", "-o", "json"))) == ["def1"]
    assert yaml.safe_load(ok(c("-o", "yaml", "definition", "list"))) == ["def1"]

    definition = tmp_path / "def2.json"
    definition.write_text('{"general": {"engine_class": "simplest"}, "engine_conf": {}}')
    assert ok(c("definition", "add", "def2", str(definition))) == "definition def2 added\n"
    update = "general: {engine_class: simplest}\nengine_conf: {epuworker_type: dt}\n"
    assert ok(c("definition", "update", "def2", "-", stdin=update)) == "definition def2 updated\n"
    described = yaml.safe_load(ok(c("definition", "describe", "def2")))
    assert described["definition"]["engine_conf"] == {"epuworker_type": "dt"}
    as_json = json.loads(ok(c("definition", "describe", "def2", "-o", "json")))
    assert as_json["name"] == "def2"

    config = tmp_path / "dom.yaml"
    config.write_text("engine_conf: {preserve_n: 0}\n")
    add = ["domain", "add", "dom2", "--definition", "def2", "--config", str(config)]
    assert ok(c("--caller", "alice", *add)) == "domain dom2 added\n"
    assert ok(c("--caller", "alice", "domain", "list")) == "dom2\n"
    assert json.loads(ok(c("domain", "list", "--caller", "alice", "-o", "json"))) == ["dom2"]
    text = ok(c("--caller", "alice", "domain", "describe", "dom2"))
    assert text.splitlines()[:3] == ["Domain:    dom2", "Engine:    simplest", "Instances: 0"]
    assert (
        json.loads(ok(c("--caller", "alice", "-o", "json", "domain", "describe", "dom2")))[
            "instances"
        ]
        == []
    )
    reconf = "engine_conf: {preserve_n: 0, epuworker_type: other}\n"
    assert ok(c("--caller", "alice", "domain", "reconfigure", "dom2", "-", stdin=reconf)) == (
        "domain dom2 reconfigured\n"
    )
    assert ok(c("--caller", "alice", "domain", "subscribe", "dom2", "watcher", "changed")) == (
        "domain dom2 subscribed\n"
    )
    assert ok(c("--caller", "alice", "domain", "unsubscribe", "dom2", "watcher")) == (
        "domain dom2 unsubscribed\n"
    )
    assert ok(c("--caller", "alice", "-o", "json", "domain", "remove", "dom2")) == "null\n"
    assert ok(c("definition", "remove", "def2")) == "definition def2 removed\n"

    status = ok(c("status"))
    assert "Workers:  1" in status and "unknown (no ZooKeeper store configured)" in status
    queues = json.loads(ok(c("status", "-o", "json")))["queues"]
    assert {"queue": "epu_management_service", "messages": 0, "consumers": 1} in queues

    # the flat commands of the last release still answer, in JSON as they did
    assert json.loads(ok(c("list-definitions"))) == ["def1"]
    assert json.loads(ok(c("describe-domain", "dom1")))["name"] == "dom1"


def test_each_exit_code(amqp_url, names, daemon, tmp_path):  # noqa: F811
    c = lambda *a, **k: ctl(amqp_url, names, *a, **k)  # noqa: E731
    unknown = c("domain", "describe", "nope")
    assert unknown.returncode == 3
    assert unknown.stderr.startswith("epumctl: NotFoundError: ") and unknown.stderr.count("\n") == 1

    bad = tmp_path / "bad.yaml"
    bad.write_text("- not\n- a mapping\n")
    refused = c("definition", "add", "x", str(bad))
    assert (refused.returncode, refused.stderr.count("\n")) == (4, 1)
    assert "must hold a mapping" in refused.stderr
    assert c("definition", "add", "x", str(tmp_path / "missing.yaml")).returncode == 4
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("engine_conf: {preserve_n: -1}\n")
    assert c("domain", "add", "d", "--definition", "def1", "--config", str(invalid)).returncode == 4

    good = tmp_path / "def.yaml"
    good.write_text("general: {engine_class: simplest}\n")
    conflict = c("definition", "add", "def1", str(good))
    assert conflict.returncode == 5, conflict.stderr

    # a queue nobody consumes: the call waits out its timeout
    with Connection(amqp_url) as conn:
        silent = Queue(names.qualify("silent"), exchange(names), names.qualify("silent"))
        silent(conn.default_channel).declare()
        try:
            waited = c("--service", "silent", "--timeout", "0.5", "definition", "list")
            assert waited.returncode == 6, waited.stderr
        finally:
            silent(conn.default_channel).delete()

    nobody = c("--service", "nobody-serves-this", "definition", "list")
    assert nobody.returncode == 7, nobody.stderr
    no_broker = subprocess.run(
        [
            *(str(BIN / "epumctl"), "--amqp-url", f"amqp://guest:guest@127.0.0.1:{free_port()}//"),
            *("--timeout", "2", "definition", "list"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert no_broker.returncode == 7, no_broker.stderr
    assert no_broker.stderr.count("\n") == 1

    usage = c("domain", "frobnicate")
    assert usage.returncode == 2


def test_watch_redraws_under_a_terminal_until_interrupted(amqp_url, names, daemon):  # noqa: F811
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [
            *(str(BIN / "epumctl"), "--amqp-url", amqp_url, "--sysname", names.sysname),
            *("--caller", "ops", "domain", "describe", "dom1", "--watch", "--interval", "0.2"),
        ],
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    seen = b""
    try:
        deadline = time.monotonic() + 20
        while seen.count(b"\x1b[H\x1b[2J") < 3:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                seen += os.read(main, 4096)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    assert seen.count(b"Domain:    dom1") >= 3
