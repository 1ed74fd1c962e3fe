"""The "cloudwatch" sensor source (the original's): GetMetricStatistics via boto3.

Per instance, each metric of ``monitor_sensors`` with the dimension
``InstanceId`` = the record's ``iaas_id``; for the domain, each metric of
``monitor_domain_sensors`` with ``cloudwatch_domain_dimensions`` (e.g. an
Auto Scaling group name).  The statistic is the engine's ``sample_function``
(Average, Sum, Maximum, Minimum, SampleCount).  Keys: the worker's AWS
credentials when set; otherwise, as the original did, the DTRS's
credentials of the instance's site (``access_key``, ``secret_key``); then
boto3's own chain.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from epum.errors import BadRequestError
from epum.sensors.credentials import SensorCredentials
from epum.sensors.polled import (
    PolledSensorSource,
    PollTarget,
    Readings,
    SensorQueryError,
    metric_list,
    sample_function,
    string_key,
    validate_polling_keys,
)

DEFAULT_NAMESPACE = "AWS/EC2"
#: The engine's sample_function names and CloudWatch's statistics.
STATISTICS = {
    "average": "Average",
    "sum": "Sum",
    "max": "Maximum",
    "maximum": "Maximum",
    "min": "Minimum",
    "minimum": "Minimum",
    "samplecount": "SampleCount",
}

_DOC = f"""\
monitor_sensors (list, sensor_type "cloudwatch" or "opentsdb"): metrics read
    per instance (CloudWatch: dimension InstanceId = the record's iaas_id).
monitor_domain_sensors (list, sensor_types "cloudwatch", "opentsdb"):
    metrics read for the whole domain.
cloudwatch_namespace (string, default {DEFAULT_NAMESPACE!r}): the metrics' namespace.
cloudwatch_domain_dimensions (mapping, optional): the dimensions of the
    domain's metrics, e.g. {{AutoScalingGroupName: my-group}}; required with
    monitor_domain_sensors.
cloudwatch_period (int, default 60): the statistics' period in seconds,
    rounded up to a multiple of 60.  AWS keys come from the worker config,
    else from the DTRS's credentials of the instance's site."""


def _statistic(conf: Mapping[str, Any]) -> str:
    return sample_function(conf, STATISTICS, "CloudWatch statistic")


class CloudWatchSensorSource(PolledSensorSource):
    """Readings from AWS CloudWatch (or a server speaking its API)."""

    CONFIG_DOC = _DOC

    def __init__(self, conf: Mapping[str, Any], credentials: SensorCredentials | None = None):
        super().__init__(conf, credentials)
        self.instance_metrics = metric_list(conf, "monitor_sensors")
        self.domain_metrics = metric_list(conf, "monitor_domain_sensors")
        self.namespace = conf.get("cloudwatch_namespace", DEFAULT_NAMESPACE)
        self.domain_dimensions = dict(conf.get("cloudwatch_domain_dimensions") or {})
        period = int(conf.get("cloudwatch_period", 60))
        self.period = max(60, -(-period // 60) * 60)
        self.statistic = _statistic(conf)

    @classmethod
    def validate_config(cls, conf: Mapping[str, Any]) -> None:
        """Check the metric lists, the namespace, the dimensions, the period and statistic."""
        validate_polling_keys(conf)
        instance_metrics = metric_list(conf, "monitor_sensors")
        domain_metrics = metric_list(conf, "monitor_domain_sensors")
        if not instance_metrics and not domain_metrics:
            raise BadRequestError(
                "sensor_type cloudwatch needs monitor_sensors or monitor_domain_sensors"
            )
        string_key(conf, "cloudwatch_namespace", DEFAULT_NAMESPACE)
        dims = conf.get("cloudwatch_domain_dimensions")
        if dims is not None and not (
            isinstance(dims, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in dims.items())
        ):
            raise BadRequestError("cloudwatch_domain_dimensions must map names to strings")
        if domain_metrics and not dims:
            raise BadRequestError("monitor_domain_sensors needs cloudwatch_domain_dimensions")
        period = conf.get("cloudwatch_period", 60)
        if isinstance(period, bool) or not isinstance(period, int) or period <= 0:
            raise BadRequestError(f"cloudwatch_period must be a positive int, not {period!r}")
        _statistic(conf)

    def _client(self, site_keys: Mapping[str, Any] | None, timeout: float) -> Any:
        # boto3 is imported when first polled, not with the engines: it takes a
        # good part of a second to import, and only the collector needs it
        import boto3
        import botocore.config

        creds = self.credentials
        keys: dict[str, Any] = {}
        if creds.aws_access_key_id:
            keys = {
                "aws_access_key_id": creds.aws_access_key_id,
                "aws_secret_access_key": creds.aws_secret_access_key,
            }
        elif site_keys and site_keys.get("access_key"):
            keys = {
                "aws_access_key_id": site_keys["access_key"],
                "aws_secret_access_key": site_keys.get("secret_key"),
            }
        config = botocore.config.Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}
        )
        return boto3.session.Session().client(
            "cloudwatch",
            region_name=creds.aws_region,
            endpoint_url=creds.aws_endpoint_url,
            config=config,
            **keys,
        )

    def statistics(
        self, client: Any, metric: str, dimensions: Mapping[str, str], target: PollTarget
    ) -> list[float]:
        """One metric's statistic over the last sample period, oldest first."""
        import botocore.exceptions

        end = datetime.datetime.fromtimestamp(target.now, tz=datetime.timezone.utc)
        start = end - datetime.timedelta(seconds=max(target.sample_period, self.period))
        try:
            answer = client.get_metric_statistics(
                Namespace=self.namespace,
                MetricName=metric,
                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                StartTime=start,
                EndTime=end,
                Period=self.period,
                Statistics=[self.statistic],
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise SensorQueryError(f"cloudwatch {metric} {dict(dimensions)}: {exc}") from exc
        points = sorted(answer.get("Datapoints") or [], key=lambda p: p["Timestamp"])
        return [float(p[self.statistic]) for p in points if self.statistic in p]

    def collect(self, target: PollTarget, timeout: float) -> Readings:
        """Query every domain metric, then every instance metric of instances with an iaas_id."""
        readings = Readings()
        clients: dict[str | None, Any] = {}

        def client_for(site: str | None) -> Any:
            if site not in clients:
                site_keys = None
                if site and not self.credentials.aws_access_key_id and target.credentials_lookup:
                    site_keys = target.credentials_lookup(target.owner, site)
                clients[site] = self._client(site_keys, timeout)
            return clients[site]

        for metric in self.domain_metrics:
            samples = self.statistics(client_for(None), metric, self.domain_dimensions, target)
            if samples:
                readings.domain[metric] = samples
        for inst in target.instances:
            if not inst.iaas_id:
                continue
            for metric in self.instance_metrics:
                samples = self.statistics(
                    client_for(inst.site), metric, {"InstanceId": inst.iaas_id}, target
                )
                readings.add_instance(inst.instance_id, metric, samples)
        return readings
