"""A worker started from the original deployments' config files, talked to in dashi's
wire format: a dashi client calls it, and it calls a dashi DTRS (which answers only
to the ``reply-to`` header)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import yaml

from tests import rabbit
from tests.dashi_double import DashiError, DashiService, dashi_call
from tests.system.test_worker import BIN

pytestmark = pytest.mark.rabbitmq

amqp_url = rabbit.amqp_url
names = rabbit.names

# The original's epu/config/service.yml and epumanagement.yml: the same keys and values.
SERVICE_YML = """
server:
  amqp: {host: localhost, port: 5672, username: guest, password: guest, vhost: /, heartbeat: 30}
logging:
  version: 1
  formatters:
    brief: {format: '%(levelname)-8s %(message)s'}
    default: {format: '%(asctime)s %(levelname)-8s %(name)-15s %(message)s',
              datefmt: '%Y-%m-%d %H:%M:%S'}
    detailed:
      format: '%(asctime)s.%(msecs)03d [%(module)-15s:%(lineno)3d] %(levelname)-5s:%(message)s'
      datefmt: '%Y-%m-%d %H:%M:%S'
    detailednostamp: {format: '[%(module)-15s:%(lineno)3d] %(levelname)-5s:%(message)s'}
  handlers:
    console: {class: logging.StreamHandler, formatter: detailed, level: DEBUG,
              stream: ext://sys.stdout}
    file: {class: logging.handlers.RotatingFileHandler, formatter: detailed, level: DEBUG,
           filename: logs/logfile.txt, maxBytes: 1048576, backupCount: 3}
    syslog: {class: logging.handlers.SysLogHandler, address: [localhost, 514],
             formatter: detailednostamp, level: DEBUG, facility: local0}
  loggers:
    epu: {level: DEBUG}
    dashi: {level: INFO}
  root: {handlers: [console, file], level: DEBUG}
"""
EPUMANAGEMENT_YML = """
epumanagement:
  service_name: epu_management_service
  provisioner_service_name: provisioner
  initial_definitions: {}
  initial_domains: {}
  needy_default_iaas_site: site-1
  needy_default_iaas_allocation: t1.micro
  provisioner_vars: {}
"""

DEFINITION = {
    "general": {"engine_class": "epu.decisionengine.impls.simplest.SimplestEngine"},
    "engine_conf": {"preserve_n": 0, "epuworker_type": "dt"},
    "health": {"monitor_health": False},
}


def _dtrs_ops() -> dict:
    def describe_site(site_name: str) -> dict:
        if site_name != "site1":
            raise DashiError("NotFoundError", f"site {site_name} not found")
        return {"type": "fake"}

    def describe_credentials(caller: str, site_name: str) -> dict:
        if (caller, site_name) != ("ops", "site1"):
            raise DashiError("NotFoundError", "no credentials")
        return {"access_key": "k"}

    return {"describe_site": describe_site, "describe_credentials": describe_credentials}


def _wait_for_worker(proc: subprocess.Popen, sysname: str, url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            dashi_call(url, sysname, "epu_management_service", "list_domain_definitions", 1)
            return
        except AssertionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the worker never answered:\n{proc.communicate()[0]}")


def test_a_worker_from_the_original_configs_serves_dashi_clients_and_services(
    amqp_url, names, tmp_path
):
    (tmp_path / "service.yml").write_text(SERVICE_YML)
    (tmp_path / "epumanagement.yml").write_text(EPUMANAGEMENT_YML)
    site = {
        "dashi": {"sysname": names.sysname, "serializer": "json"},
        "epumanagement": {"default_user": "ops", "proc_name": "epum_0", "mock_provisioner": False},
    }
    (tmp_path / "site.yml").write_text(yaml.safe_dump(site))
    files = ["service.yml", "epumanagement.yml", "site.yml"]
    dtrs = DashiService(amqp_url, names.sysname, "dtrs", _dtrs_ops()).start()
    proc = subprocess.Popen(
        [str(BIN / "epum-worker"), *(a for f in files for a in ("--config", f))],
        cwd=tmp_path,  # the log file is logs/logfile.txt, relative, as in the original
        env={**os.environ, "EPUM_AMQP_URL": amqp_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_worker(proc, names.sysname, amqp_url)

        def call(op: str, **args) -> dict:
            return dashi_call(amqp_url, names.sysname, "epu_management_service", op, **args)

        assert call("add_domain_definition", definition_id="def1", definition=DEFINITION) == {
            "result": None,
            "error": None,
        }
        good = {"engine_conf": {"force_site": "site1"}}
        assert (
            call("add_domain", domain_id="good", definition_id="def1", config=good)["error"] is None
        )
        # refused only because the DTRS's answer reached epum (a lost one accepts)
        bad = {"engine_conf": {"force_site": "nowhere"}}
        error = call("add_domain", domain_id="bad", definition_id="def1", config=bad)["error"]
        assert error["exc_type"] == "dashi.exceptions.BadRequestError"
        assert "nowhere" in error["value"]
        # and describe_credentials's answer reached it too: eve has none for site1
        error = call(
            "add_domain", domain_id="eves", definition_id="def1", config=good, caller="eve"
        )["error"]
        assert error["exc_type"] == "dashi.exceptions.BadRequestError"
        assert "site1" in error["value"] and "credentials" in error["value"]
        assert call("describe_domain", domain_id="good")["result"]["name"] == "good"
        error = call("describe_domain", domain_id="bad")["error"]
        assert error["exc_type"] == "dashi.exceptions.NotFoundError"
        error = call("describe_domain_definition", definition_id="nope")["error"]
        assert error["exc_type"] == "dashi.exceptions.NotFoundError"

        # each domain's questions are asked at once (the site's and the caller's credentials)
        asked = [r for r in dtrs.requests if r["op"] == "describe_site"]
        assert [r["args"]["site_name"] for r in asked] == ["site1", "nowhere"]
        creds = [r["args"] for r in dtrs.requests if r["op"] == "describe_credentials"]
        assert sorted(creds, key=lambda a: (a["caller"], a["site_name"])) == [
            {"caller": "eve", "site_name": "site1"},
            {"caller": "ops", "site_name": "nowhere"},
            {"caller": "ops", "site_name": "site1"},
        ]
        for request in dtrs.requests:  # the dashi header and the standard properties
            assert request["headers"]["reply-to"]
            assert request["properties"]["reply_to"]
            assert request["properties"]["correlation_id"]
            assert request["headers"]["sender"] == f"{names.sysname}.epu_management_service"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
        dtrs.stop()
    assert proc.returncode == 0, out
    logged = (tmp_path / "logs" / "logfile.txt").read_text()
    assert "worker" in logged and "starting" in logged
    for key in ("epumanagement.proc_name", "epumanagement.mock_provisioner"):
        assert logged.count(key) == 1, f"{key} reported once as ignored:\n{logged}"
    assert "unknown key" not in logged
