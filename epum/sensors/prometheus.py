"""The "prometheus" sensor source: PromQL through the Prometheus HTTP API.

One expression for the domain (its first series is the domain's reading)
and one for the instances (each series is matched to an instance by a
label that carries the instance's id or address).  ``$domain_id`` and
``$owner`` in an expression are replaced by the domain's id and owner.
Basic auth or a bearer token come from the worker's ``SensorCredentials``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from string import Template
from typing import Any

import requests

from epum.errors import BadRequestError
from epum.instances import Instance
from epum.sensors.credentials import SensorCredentials
from epum.sensors.polled import (
    PolledSensorSource,
    PollTarget,
    Readings,
    SensorQueryError,
    string_key,
    validate_polling_keys,
)

#: Which record field an instance label is compared with.
MATCH_FIELDS = ("instance_id", "iaas_id", "private_ip", "public_ip", "hostname")
QUERY_MODES = ("instant", "range")

_DOC = """\
prometheus_url (string, sensor_type "prometheus"): the Prometheus server,
    e.g. http://prometheus:9090; auth comes from the worker config.
prometheus_domain_query (string, optional): PromQL for the whole domain; its
    first series is the domain's reading of `metric`.  $domain_id and $owner
    are replaced by the domain's id and owner.
prometheus_instance_query (string, optional): PromQL giving one series per
    instance; each is matched to an instance by prometheus_instance_label.
prometheus_instance_label (string, default "instance"): the label that
    carries the instance's id or address (a ":port" suffix is ignored).
prometheus_instance_match (default "private_ip"): the record field the label
    is compared with: instance_id, iaas_id, private_ip, public_ip, hostname.
prometheus_query_mode (default "instant"): "instant" (one sample) or "range"
    (the samples of the last sample_period, one per prometheus_step seconds).
prometheus_step (number, default 15): the step of a range query."""


class PrometheusSensorSource(PolledSensorSource):
    """Domain and instance readings from PromQL expressions."""

    CONFIG_DOC = _DOC

    def __init__(self, conf: Mapping[str, Any], credentials: SensorCredentials | None = None):
        super().__init__(conf, credentials)
        self.url = str(conf["prometheus_url"]).rstrip("/")
        self.metric = str(conf.get("metric") or "value")
        self.domain_query = conf.get("prometheus_domain_query")
        self.instance_query = conf.get("prometheus_instance_query")
        self.label = conf.get("prometheus_instance_label", "instance")
        self.match = conf.get("prometheus_instance_match", "private_ip")
        self.mode = conf.get("prometheus_query_mode", "instant")
        self.step = float(conf.get("prometheus_step", 15))

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Check the URL, the queries, the label, the match field, the mode and step."""
        validate_polling_keys(conf)
        url = string_key(conf, "prometheus_url")
        if url is None or not url.startswith(("http://", "https://")):
            raise BadRequestError(f"prometheus_url must be an http(s) URL, not {url!r}")
        domain_q = string_key(conf, "prometheus_domain_query")
        instance_q = string_key(conf, "prometheus_instance_query")
        if domain_q is None and instance_q is None:
            raise BadRequestError(
                "sensor_type prometheus needs prometheus_domain_query or prometheus_instance_query"
            )
        string_key(conf, "prometheus_instance_label", "instance")
        match = conf.get("prometheus_instance_match", "private_ip")
        if match not in MATCH_FIELDS:
            raise BadRequestError(
                f"prometheus_instance_match must be one of {', '.join(MATCH_FIELDS)}, not {match!r}"
            )
        mode = conf.get("prometheus_query_mode", "instant")
        if mode not in QUERY_MODES:
            raise BadRequestError(
                f"prometheus_query_mode must be one of {', '.join(QUERY_MODES)}, not {mode!r}"
            )
        step = conf.get("prometheus_step", 15)
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise BadRequestError(f"prometheus_step must be a positive number, not {step!r}")

    def _auth(self) -> dict[str, Any]:
        creds = self.credentials
        if creds.prometheus_bearer_token:
            return {"headers": {"Authorization": f"Bearer {creds.prometheus_bearer_token}"}}
        if creds.prometheus_username is not None:
            return {"auth": (creds.prometheus_username, creds.prometheus_password or "")}
        return {}

    def query(self, expr: str, target: PollTarget, timeout: float) -> list[dict[str, Any]]:
        """Run ``expr`` (instant or range, ending at ``target.now``); the result series."""
        if self.mode == "range":
            path = "/api/v1/query_range"
            params = {
                "query": expr,
                "start": target.now - target.sample_period,
                "end": target.now,
                "step": self.step,
            }
        else:
            path = "/api/v1/query"
            params = {"query": expr, "time": target.now}
        try:
            resp = requests.get(self.url + path, params=params, timeout=timeout, **self._auth())
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise SensorQueryError(f"prometheus {self.url}: {exc}") from exc
        if resp.status_code != 200 or body.get("status") != "success":
            raise SensorQueryError(
                f"prometheus {self.url}: HTTP {resp.status_code}: {body.get('error', body)}"
            )
        data = body.get("data") or {}
        if data.get("resultType") not in ("vector", "matrix"):
            raise SensorQueryError(
                f"prometheus {self.url}: {expr!r} gave a {data.get('resultType')}, not a vector"
            )
        return list(data.get("result") or [])

    @staticmethod
    def _samples(series: Mapping[str, Any]) -> list[float]:
        points = series.get("values") or ([series["value"]] if "value" in series else [])
        out = []
        for _, text in points:
            value = float(text)
            if math.isfinite(value):
                out.append(value)
        return out

    def _instance_key(self, inst: Instance) -> str | None:
        value = getattr(inst, self.match, None)
        return str(value) if value else None

    def collect(self, target: PollTarget, timeout: float) -> Readings:
        """Run the domain query and the instance query."""
        readings = Readings()
        subst = {"domain_id": target.domain_id, "owner": target.owner}
        if self.domain_query:
            result = self.query(Template(self.domain_query).safe_substitute(subst), target, timeout)
            samples = self._samples(result[0]) if result else []
            if samples:
                readings.domain[self.metric] = samples
        if self.instance_query:
            by_key = {}
            for inst in target.instances:
                key = self._instance_key(inst)
                if key:
                    by_key[key] = inst.instance_id
            expr = Template(self.instance_query).safe_substitute(subst)
            for series in self.query(expr, target, timeout):
                label = str((series.get("metric") or {}).get(self.label, ""))
                instance_id = by_key.get(label) or by_key.get(label.rsplit(":", 1)[0])
                if instance_id is not None:
                    readings.add_instance(instance_id, self.metric, self._samples(series))
        return readings
