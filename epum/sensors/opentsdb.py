"""The "opentsdb" sensor source (the original's): OpenTSDB's HTTP ``/api/query``.

The original's keys: ``opentsdb_host``, ``opentsdb_port``,
``monitor_sensors`` (per instance, tagged by ``opentsdb_tag``, default
``host`` = the record's hostname), ``monitor_domain_sensors`` (tagged
``domain`` = the domain id and ``user`` = its owner).  The aggregator is the
engine's ``sample_function`` (avg, sum, max, min).  One query per metric
covers every instance (``host=a|b|c`` groups by host).
"""

from __future__ import annotations

from collections.abc import Mapping
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
    metric_list,
    port_key,
    sample_function,
    string_key,
    validate_polling_keys,
)

DEFAULT_PORT = 4242
#: The engine's sample_function names and OpenTSDB's aggregators.
AGGREGATORS = {"average": "avg", "sum": "sum", "max": "max", "maximum": "max", "min": "min"}
#: opentsdb_tag values and the record field each one carries.
TAG_FIELDS = {"host": "hostname", "iaas_id": "iaas_id", "instance_id": "instance_id"}

_DOC = f"""\
opentsdb_host (string, sensor_type "opentsdb"): the OpenTSDB server.
opentsdb_port (int, default {DEFAULT_PORT}): its HTTP port.
opentsdb_tag (default "host"): the tag naming an instance in its series:
    host (the record's hostname), iaas_id or instance_id.  (The original's
    phantom_unique is refused: records do not carry the image it needs.)
    Domain metrics are tagged domain=<domain id> and user=<owner>."""


def _aggregator(conf: Mapping[str, Any]) -> str:
    return sample_function(conf, AGGREGATORS, "OpenTSDB aggregator")


class OpenTSDBSensorSource(PolledSensorSource):
    """Readings from an OpenTSDB server."""

    CONFIG_DOC = _DOC

    def __init__(self, conf: Mapping[str, Any], credentials: SensorCredentials | None = None):
        super().__init__(conf, credentials)
        port = port_key(conf, "opentsdb_port", DEFAULT_PORT)
        self.base = f"http://{conf['opentsdb_host']}:{port}"
        self.instance_metrics = metric_list(conf, "monitor_sensors")
        self.domain_metrics = metric_list(conf, "monitor_domain_sensors")
        self.tag = conf.get("opentsdb_tag", "host")
        self.aggregator = _aggregator(conf)

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Check the host, port, metric lists, tag and aggregator."""
        validate_polling_keys(conf)
        if string_key(conf, "opentsdb_host") is None:
            raise BadRequestError("sensor_type opentsdb needs opentsdb_host")
        port_key(conf, "opentsdb_port", DEFAULT_PORT)
        if not metric_list(conf, "monitor_sensors") and not metric_list(
            conf, "monitor_domain_sensors"
        ):
            raise BadRequestError(
                "sensor_type opentsdb needs monitor_sensors or monitor_domain_sensors"
            )
        tag = conf.get("opentsdb_tag", "host")
        if tag not in TAG_FIELDS:
            raise BadRequestError(
                f"opentsdb_tag must be one of {', '.join(TAG_FIELDS)}, not {tag!r}"
            )
        _aggregator(conf)

    def query(
        self, metric: str, tags: Mapping[str, str], target: PollTarget, timeout: float
    ) -> list[dict[str, Any]]:
        """One ``/api/query`` of ``metric`` over the sample period; its series."""
        body = {
            "start": int(target.now - target.sample_period),
            "end": int(target.now),
            "queries": [{"aggregator": self.aggregator, "metric": metric, "tags": dict(tags)}],
        }
        try:
            resp = requests.post(self.base + "/api/query", json=body, timeout=timeout)
            answer = resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise SensorQueryError(f"opentsdb {self.base}: {exc}") from exc
        if resp.status_code != 200 or not isinstance(answer, list):
            raise SensorQueryError(f"opentsdb {self.base}: HTTP {resp.status_code} for {metric}")
        return answer

    @staticmethod
    def _samples(series: Mapping[str, Any]) -> list[float]:
        dps = series.get("dps") or {}
        if isinstance(dps, Mapping):
            points = sorted((int(t), v) for t, v in dps.items())
        else:
            points = sorted((int(t), v) for t, v in dps)
        return [float(v) for _, v in points]

    def _tag_value(self, inst: Instance) -> str | None:
        value = getattr(inst, TAG_FIELDS[self.tag])
        return str(value) if value else None

    def collect(self, target: PollTarget, timeout: float) -> Readings:
        """One query per domain metric and one per instance metric."""
        readings = Readings()
        for metric in self.domain_metrics:
            tags = {"domain": target.domain_id, "user": target.owner}
            for series in self.query(metric, tags, target, timeout):
                if (series.get("tags") or {}).get("domain") in (target.domain_id, None):
                    samples = self._samples(series)
                    if samples:
                        readings.domain[metric] = samples
                        break
        by_tag = {}
        for inst in target.instances:
            value = self._tag_value(inst)
            if value:
                by_tag[value] = inst.instance_id
        if by_tag:
            for metric in self.instance_metrics:
                tags = {self.tag: "|".join(sorted(by_tag))}
                for series in self.query(metric, tags, target, timeout):
                    instance_id = by_tag.get((series.get("tags") or {}).get(self.tag))
                    if instance_id is not None:
                        readings.add_instance(instance_id, metric, self._samples(series))
        return readings
