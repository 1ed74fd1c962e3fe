"""A ZooKeeper store holding D domains of N RUNNING instances, written in seconds.

``seed_fleet(client, hosts, base_path, D, N)`` makes the first domain the
way ``bench.worker_rig.seed`` does (an in-process facade on the store: the
definition, the domain, its launches, one RUNNING report and one heartbeat
per instance), then writes the other D - 1 domains straight to ZooKeeper as
copies of it: the same config znodes' bytes, and records that are the
facade's own, decoded, given a fresh instance id (and launch id and agent
address) and encoded again with the store's codec, at the paths of the
store's layout (``epum.store.zk_paths``), each domain with its records'
index entries.  Writing them with kazoo transactions of a few hundred
creates, many in flight at once, takes about 15 s for 100,000 records on
the 2-core machine, where the facade would take many minutes.  Owners hold
``DOMAINS_PER_OWNER`` domains each, as a deployment within
``limits.max_domains_per_caller`` would.

The store is left as the facade's work would leave it, except that the
copies have no decision log yet (a decider writes one at its first pass)
and their znodes are at version 0.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.worker_rig import OWNER, seed
from epum.instances import Instance
from epum.sim.agents import agent_address
from epum.store.base import CONFIG_SECTIONS
from epum.store.codec import dump, load
from epum.store.zk_domain import DOMAIN_LEAVES, decode_instance
from epum.store.zk_paths import ZkPaths

#: Domains per owner of the copies (``limits.max_domains_per_caller`` is 1,000).
DOMAINS_PER_OWNER = 100
#: Creates per transaction, and transactions in flight at once.
OPS_PER_TRANSACTION = 250
IN_FLIGHT = 32


@dataclass(frozen=True)
class SeededFleet:
    """What ``seed_fleet`` wrote: the counts, and the bytes of what a decider pass reads.

    ``record_bytes`` is the JSON of every instance record together;
    ``cached_znodes`` the znodes under the store's ``domains`` subtree (what
    each worker's watch-fed cache holds); ``pass_blobs`` the data of every
    znode a pass decodes (each record, each domain's config sections and
    sensor data); ``seconds`` how long the seeding took.
    """

    domains: int
    instances: int
    record_bytes: int
    cached_znodes: int
    pass_blobs: list[bytes]
    seconds: float

    @property
    def records(self) -> int:
        """Every instance record of the fleet."""
        return self.domains * self.instances


def owner_of(index: int) -> str:
    """The owner of the ``index``-th copied domain."""
    return f"owner{index // DOMAINS_PER_OWNER:04d}"


def seed_fleet(
    client: Any, hosts: str, base_path: str, domains: int, instances: int
) -> SeededFleet:
    """Store ``domains`` domains of ``instances`` RUNNING, healthy, heard-from instances
    under ``base_path`` (see the module docstring); ``client`` is a started kazoo client
    of the ensemble at ``hosts``.  RuntimeError if a transaction fails."""
    if domains < 1 or instances < 1:
        raise ValueError("a fleet needs at least one domain of one instance")
    began = time.monotonic()
    paths = ZkPaths(base_path)
    template = seed(hosts, base_path, 1, instances)
    (template_id,) = template.instances
    template_path = paths.domain(OWNER, template_id)
    leaves = {name: client.get(f"{template_path}/{name}")[0] for name in DOMAIN_LEAVES}
    parent = f"{template_path}/instances"
    records, record_blobs = [], []
    for name in sorted(client.get_children(parent)):
        raw, stat = client.get(f"{parent}/{name}")
        records.append(decode_instance(load(raw, name), stat, name))
        record_blobs.append(raw)
    owners = sorted({owner_of(d) for d in range(1, domains)})
    for owner in owners:
        client.ensure_path(paths.owner(owner))
    pending = []
    for ops in _transactions(paths, leaves, records, domains):
        txn = client.transaction()
        for path, raw in ops:
            txn.create(path, raw)
        record_blobs += [raw for path, raw in ops if "/instances/" in path]
        pending.append(txn.commit_async())
        if len(pending) >= IN_FLIGHT:
            _check(pending.pop(0).get(timeout=120))
    for result in pending:
        _check(result.get(timeout=120))
    config_blobs = [leaves[name] for name in (*CONFIG_SECTIONS, "sensor_data")]
    return SeededFleet(
        domains=domains,
        instances=instances,
        record_bytes=sum(len(raw) for raw in record_blobs),
        # the subtree's root, the owners, and per domain its znode, leaves,
        # ``instances`` and records
        cached_znodes=2 + len(owners) + domains * (2 + len(DOMAIN_LEAVES) + instances),
        pass_blobs=record_blobs + config_blobs * domains,
        seconds=time.monotonic() - began,
    )


def _transactions(
    paths: ZkPaths, leaves: dict[str, bytes], records: list[Instance], domains: int
) -> Iterator[list[tuple[str, bytes]]]:
    """The creates of the copied domains (1 .. domains - 1), in transactions' worth,
    a whole domain in each (its znodes, records and their index entries)."""
    batch: list[tuple[str, bytes]] = []
    now = time.time()
    for d in range(1, domains):
        owner, domain_id = owner_of(d), f"dom{d:05d}"
        path = paths.domain(owner, domain_id)
        ops = [(path, _identity(owner, domain_id, "domain"))]
        ops += [(f"{path}/{name}", raw) for name, raw in leaves.items()]
        ops.append((f"{path}/instances", b""))
        launch_id = str(uuid.uuid4())
        for record in records:
            instance_id = str(uuid.uuid4())
            copy = record.replace(
                instance_id=instance_id,
                launch_id=launch_id,
                agent_address=agent_address(instance_id),
                state_time=now,
                last_heard=now,
            )
            raw = dump(copy.to_dict(), f"instance {instance_id}")
            ops.append((paths.instance(path, instance_id), raw))
            ops.append((paths.index_entry(instance_id), _identity(owner, domain_id)))
        if batch and len(batch) + len(ops) > OPS_PER_TRANSACTION:
            yield batch
            batch = []
        batch += ops
    if batch:
        yield batch


def _identity(owner: str, domain_id: str, what: str = "value") -> bytes:
    """A domain's znode or an index entry: who owns it, with a fresh token."""
    return dump({"owner": owner, "domain_id": domain_id, "token": uuid.uuid4().hex}, what)


def _check(results: list[Any]) -> None:
    """RuntimeError if a committed transaction's results hold an error."""
    errors = [r for r in results if isinstance(r, Exception)]
    if errors:
        raise RuntimeError(f"seeding transaction failed: {errors[0]!r}")
