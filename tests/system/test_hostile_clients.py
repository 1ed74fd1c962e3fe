"""A hostile client against a real worker, on each store (property-based, hypothesis).

Every example is one bad message, built from an operation's declaration and
spoiled one way: a wrong-typed, missing or extra argument, an oversized or
deeply nested value, NaN or Infinity, a bad record or heartbeat, a
compression header, a foreign content type.  For each: the worker answers
within a second with a typed error, and the whole store is dumped before and
after and is the same.  At the end: the worker still runs and answers, every
call got exactly one reply (nothing redelivered), and the service queue is
empty (each message was settled once).
"""

from __future__ import annotations

import bz2
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kazoo.client import KazooClient
from kombu import Connection, Queue

from epum.messaging.connection import exchange
from epum.messaging.names import Names
from epum.operations import OPERATIONS
from tests import rabbit, zk_server
from tests.system.test_worker import finish, launch, write_config

pytestmark = [pytest.mark.rabbitmq]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server

SERVICE = "epu_management_service"
TYPED = {
    "dashi.exceptions.BadRequestError",
    "dashi.exceptions.NotFoundError",
    "dashi.exceptions.UnknownOperationError",
}
EXAMPLES = 30

leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_value = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
#: For each declared type, values of every other JSON type.
WRONG = {
    str: st.integers() | st.lists(leaf, max_size=2) | st.dictionaries(st.text(max_size=4), leaf),
    dict: st.text(max_size=8) | st.integers() | st.lists(leaf, max_size=2) | st.booleans(),
    list: st.text(max_size=8) | st.integers() | st.dictionaries(st.text(max_size=4), leaf),
    int: st.text(max_size=8) | st.lists(leaf, max_size=2) | st.booleans(),
    float: st.text(max_size=8) | st.lists(leaf, max_size=2) | st.booleans(),
    bool: st.text(max_size=8) | st.lists(leaf, max_size=2),
}
BAD_RECORD_FIELDS = {
    "extravars": "zzz",
    "site": ["a", "list"],
    "hostname": {"a": 1},
    "update_counter": "7",
    "error_time": "soon",
    "errors": "not a list",
}
BAD_HEARTBEATS = [
    {"failed_processes": [1, 2]},
    {"failed_processes": "x"},
    {"error_time": "late"},
    {"error": 5},
    {"state": "NOT-A-HEALTH"},
]


def base_args(op) -> dict:
    """Arguments of the right types for ``op`` (which may still name nothing that exists)."""
    samples = {str: "dom1", dict: {}, list: [], int: 1, float: 1.0, bool: True}
    args = {a.name: samples[a.type] for a in op.args if a.required}
    if op.name == "instance_info":
        args["record"] = {"node_id": "n1", "state": "600-RUNNING"}
    if op.name == "ou_heartbeat":
        args["heartbeat"] = {"node_id": "n1", "state": "OK"}
    return args


@st.composite
def bad_messages(draw) -> dict:
    """One spoiled message: ``{body, headers, content_type, kind}``."""
    op = draw(st.sampled_from(OPERATIONS))
    args = base_args(op)
    required = [a for a in op.args if a.required]
    kinds = ["extra", "oversized", "deep", "nan", "compressed", "content_type"]
    if required:
        kinds += ["wrong_type", "missing"]
    if op.name in ("instance_info", "ou_heartbeat"):
        kinds += ["bad_record"] * 2
    kind = draw(st.sampled_from(kinds))
    headers: dict = {}
    content_type = "application/json"
    body_args = dict(args)
    if kind == "wrong_type":
        arg = draw(st.sampled_from(required))
        body_args[arg.name] = draw(WRONG[arg.type])
    elif kind == "missing":
        del body_args[draw(st.sampled_from(required)).name]
    elif kind == "extra":
        name = draw(st.from_regex(r"zz_[a-z]{1,8}", fullmatch=True))
        body_args[name] = draw(json_value)
    elif kind == "oversized":
        where = draw(st.sampled_from([*body_args, "zz_big"]))
        body_args[where] = "x" * draw(st.sampled_from([300_000, 1_000_000]))
    elif kind == "deep":
        depth = draw(st.integers(490, 700))
        body_args[draw(st.sampled_from([*body_args, "zz_deep"]))] = json.loads(
            "[" * depth + "]" * depth
        )
    elif kind == "nan":
        where = draw(st.sampled_from([*body_args, "zz_nan"]))
        body_args[where] = {"v": draw(st.sampled_from([float("nan"), float("inf"), -float("inf")]))}
    elif kind == "bad_record" and op.name == "instance_info":
        field = draw(st.sampled_from(sorted(BAD_RECORD_FIELDS)))
        body_args["record"] = {**args["record"], field: BAD_RECORD_FIELDS[field]}
    elif kind == "bad_record":
        body_args["heartbeat"] = {**args["heartbeat"], **draw(st.sampled_from(BAD_HEARTBEATS))}
    raw = json.dumps({"op": op.name, "args": body_args}, allow_nan=True).encode()
    if kind == "compressed":
        raw = bz2.compress(raw)
        headers["compression"] = "application/x-bz2"
    elif kind == "content_type":
        content_type = draw(st.sampled_from(["application/x-python-serialize", "text/plain"]))
    return {"body": raw, "headers": headers, "content_type": content_type, "kind": kind}


class HostilePeer:
    """Publishes raw calls to the service queue and collects replies by correlation id."""

    def __init__(self, url: str, names: Names):
        self.names = names
        self.conn = Connection(url)
        self.channel = self.conn.channel()
        self.exchange = exchange(names)(self.channel)
        self.reply_queue = Queue(
            names.qualify(f"hostile-{uuid.uuid4().hex[:8]}"), exclusive=True, auto_delete=True
        )(self.channel)
        self.reply_queue.declare()
        self.replies: Counter[str] = Counter()

    def call(self, message: dict, timeout: float) -> tuple[dict, float]:
        """Publish one call; its reply and the seconds it took."""
        cid = uuid.uuid4().hex
        started = time.monotonic()
        self.exchange.publish(
            self.exchange.Message(
                message["body"],
                content_type=message["content_type"],
                content_encoding="binary",
                headers={"sender": self.names.qualify("mallory"), **message["headers"]},
                properties={"reply_to": self.reply_queue.name, "correlation_id": cid},
            ),
            routing_key=self.names.qualify(SERVICE),
        )
        while time.monotonic() - started < timeout:
            got = self.reply_queue.get(no_ack=True)
            if got is None:
                time.sleep(0.005)
                continue
            self.replies[got.properties.get("correlation_id")] += 1
            if got.properties.get("correlation_id") == cid:
                return json.loads(got.body), time.monotonic() - started
        raise AssertionError(f"no reply within {timeout} s to a {message['kind']} message")

    def drain(self) -> None:
        """Count every late reply still queued (a redelivered request would add one)."""
        while (got := self.reply_queue.get(no_ack=True)) is not None:
            self.replies[got.properties.get("correlation_id")] += 1

    def close(self) -> None:
        self.conn.release()


def rpc_dump(client) -> dict:
    """What a client can see of the store: every definition, and the domains of the
    callers the examples name."""
    out: dict = {"definitions": {}, "domains": {}}
    for def_id in client.list_domain_definitions():
        out["definitions"][def_id] = client.describe_domain_definition(def_id)
    for caller in ("ops", "dom1", "mallory"):
        for dom in client.list_domains(caller=caller):
            out["domains"][f"{caller}/{dom}"] = client.describe_domain(dom, caller=caller)
    return out


def zk_dump(zk: KazooClient, base: str) -> dict:
    """Every znode under ``base`` (elections aside) with its data and version."""
    out, stack = {}, [base]
    while stack:
        path = stack.pop()
        data, stat = zk.get(path)
        out[path] = (data, stat.version)
        stack.extend(
            f"{path}/{child}"
            for child in zk.get_children(path)
            if path != base or child != "elections"
        )
    return out


def run_hostile(url: str, names: Names, worker, dump: Callable[[], dict]) -> None:
    peer = HostilePeer(url, names)
    kinds: Counter[str] = Counter()
    try:
        before = dump()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(bad_messages())
        def one_bad_message(message: dict) -> None:
            kinds[message["kind"]] += 1
            reply, seconds = peer.call(message, timeout=5.0)
            assert seconds < 1.0, f"a {message['kind']} message took {seconds:.2f} s"
            error = reply.get("error")
            assert error, f"a {message['kind']} message was accepted: {reply}"
            assert error["exc_type"] in TYPED, error
            assert len(json.dumps(reply)) < 10_000  # no echo of a large value
            assert dump() == before

        one_bad_message()
        # A redelivered request goes back to the head of the queue, so the
        # single worker answers it again before a later good call.
        probe = {
            "kind": "good",
            "body": json.dumps({"op": "list_domains", "args": {"caller": "mallory"}}).encode(),
            "content_type": "application/json",
            "headers": {},
        }
        reply, _ = peer.call(probe, 5.0)
        assert reply.get("error") is None, reply
        peer.drain()
        assert set(peer.replies.values()) == {1}, "a request was answered twice"
        assert worker.proc.poll() is None, "the worker died"
        assert worker.client.list_domains() == ["dom1"]
        with Connection(url) as conn:
            depth = conn.default_channel.queue_declare(names.qualify(SERVICE), passive=True)
            assert depth.message_count == 0
        assert len(kinds) >= 6, kinds
    finally:
        peer.close()


def hostile_config(path, names: Names):
    config = yaml.safe_load(write_config(path, names, f"{names.sysname}-w1").read_text())
    config["server"]["amqp"]["dtrs_timeout"] = 0.3
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_hostile_client_cannot_hurt_a_worker_on_memory(amqp_url, names, tmp_path):
    config = hostile_config(tmp_path / "epum.yaml", names)
    worker = launch(amqp_url, names, [config], f"{names.sysname}-w1")
    try:
        run_hostile(amqp_url, names, worker, lambda: rpc_dump(worker.client))
        code, _, log = worker.stop()
        assert code == 0
        assert "RecursionError" not in log
        assert max(len(line) for line in log.splitlines()) < 4000
    finally:
        finish(worker)


@pytest.mark.zookeeper
def test_a_hostile_client_cannot_hurt_a_worker_on_zookeeper(amqp_url, names, zookeeper, tmp_path):
    config = hostile_config(tmp_path / "epum.yaml", names)
    base = f"/{names.sysname}"
    shared = tmp_path / "zk.yaml"
    shared.write_text(
        yaml.safe_dump(
            {
                "server": {"zookeeper": {"hosts": zookeeper.hosts, "path": base}},
                "epumanagement": {"persistence_type": "zookeeper"},
            }
        )
    )
    worker = launch(amqp_url, names, [config, shared], f"{names.sysname}-w1")
    zk = KazooClient(hosts=zookeeper.hosts)
    zk.start(timeout=10)
    try:
        run_hostile(amqp_url, names, worker, lambda: zk_dump(zk, base))
        code, _, log = worker.stop()
        assert code == 0
        assert "RecursionError" not in log
        assert "SessionExpired" not in log and "connection lost" not in log.lower()
    finally:
        zk.stop()
        zk.close()
        finish(worker)
