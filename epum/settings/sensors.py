"""``server.sensors``: the sensor collector's bounds and the metrics servers' secrets."""

from __future__ import annotations

from dataclasses import dataclass

from epum.errors import ConfigError
from epum.settings.checks import Checked, non_empty, positive, setting


@dataclass(frozen=True)
class SensorSettings(Checked):
    """``server.sensors``: the sensor collector and the secrets of the metrics servers.

    Secrets belong to the operator, never to a domain's config: a domain
    only names its server.  The worker builds ``SensorCredentials`` from
    this section (``epum.service``).
    """

    enabled: bool = setting(True, why="domains naming a polled sensor_type expect their readings")
    query_timeout: float = setting(
        10.0,
        why="a metrics server slower than this is as good as down; the next period retries",
        check=positive,
    )
    min_sample_period: float = setting(
        10.0,
        why="a metrics server is shared; lower it only in tests, to poll every second or two",
        check=positive,
    )
    amqp_probe: bool = setting(
        True,
        why="the rabbitmq source can still read a queue over AMQP when the management "
        "API does not answer (through this worker's broker settings)",
    )
    prometheus_username: str | None = setting(
        None, why="Prometheus asks for no login by default", check=non_empty
    )
    prometheus_password: str | None = setting(
        None, why="Prometheus asks for no login by default", secret=True
    )
    prometheus_bearer_token: str | None = setting(
        None, why="Prometheus asks for no token by default", secret=True
    )
    rabbitmq_username: str = setting(
        "guest", why="the management API's default user", check=non_empty
    )
    rabbitmq_password: str = setting(
        "guest", why="the management API's default password", secret=True
    )
    aws_access_key_id: str | None = setting(
        None, why="the DTRS's credentials of the site, then boto3's chain", check=non_empty
    )
    aws_secret_access_key: str | None = setting(
        None, why="the DTRS's credentials of the site, then boto3's chain", secret=True
    )
    aws_region: str = setting(
        "us-east-1", why="the original used boto's default region", check=non_empty
    )
    aws_endpoint_url: str | None = setting(
        None, why="AWS's own CloudWatch endpoint", check=non_empty
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.prometheus_username is None) != (self.prometheus_password is None):
            raise ConfigError(
                "server.sensors.prometheus_username and prometheus_password go together"
            )
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ConfigError(
                "server.sensors.aws_access_key_id and aws_secret_access_key go together"
            )
