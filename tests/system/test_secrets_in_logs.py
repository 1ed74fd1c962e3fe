"""Secrets never printed: an epum-worker on a ZooKeeper store with a digest
ACL and a broker user of its own, logging everything at DEBUG (kazoo's
request dump, which shows the digest credential, included); its log holds
none of the configured secrets, in any encoding."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import yaml

from epum.messaging.names import Names
from tests import rabbit, zk_server
from tests.integration.test_authenticated_callers import broker_users
from tests.system.test_worker import finish, launch, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.zookeeper]

amqp_url = rabbit.amqp_url
names = rabbit.names
zookeeper = zk_server.zk_server

#: kazoo's most verbose level (it logs every request, an Auth packet too).
KAZOO_BLATHER = 5


def test_a_worker_at_debug_logs_no_configured_secret(amqp_url, names: Names, zookeeper, tmp_path):
    amqp_password = "amqp-Pw/with@odd:chars-7f3a"
    zk_password = "zk-Pw:with@odd/chars-c41d"
    base = write_config(tmp_path / "epum.yaml", names, f"{names.sysname}-w1")
    extra = tmp_path / "secrets.yaml"
    extra.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "zookeeper": {
                        "hosts": zookeeper.hosts,
                        "path": f"/{names.sysname}",
                        "username": "epum",
                        "password": zk_password,
                    }
                },
                "epumanagement": {"persistence_type": "zookeeper"},
                "log_level": "DEBUG",
                "logging": {
                    "version": 1,
                    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
                    "handlers": {
                        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"}
                    },
                    "loggers": {
                        "kazoo": {"level": KAZOO_BLATHER},
                        "kombu": {"level": "DEBUG"},
                        "amqp": {"level": "DEBUG"},
                    },
                    "root": {"level": "DEBUG", "handlers": ["stderr"]},
                },
            }
        )
    )
    with broker_users(amqp_url, ["worker"], password=amqp_password) as users:
        _, url = users["worker"]
        daemon = launch(url, names, [base, extra], f"{names.sysname}-w1")
        try:
            daemon.client.add_domain("dom2", "def1", {"engine_conf": {"preserve_n": 0}})
            assert daemon.client.list_domains() == ["dom1", "dom2"]
            code, _, log = daemon.stop()
        finally:
            finish(daemon)
    assert code == 0
    assert "DEBUG kazoo" in log and "Auth(" in log, "kazoo's request dump was not on"
    for secret in (amqp_password, zk_password):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            assert form not in log, f"a configured secret ({form[:4]}...) is in the log"
    assert "****" in log  # what was there instead
