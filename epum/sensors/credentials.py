"""What the sensor sources need from the worker's config (never from a domain's).

Secrets for metrics servers belong to the operator running the workers, not
to the owners of domains, so they live here and a domain config can only
say which server to ask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SensorCredentials:
    """Credentials and endpoints the polled sensor sources use.

    Every field is optional: None means "send none" (or, for AWS, "use
    boto3's own chain or the DTRS").
    """

    #: HTTP basic auth for the Prometheus API (both or neither).
    prometheus_username: str | None = None
    prometheus_password: str | None = None
    #: A bearer token for the Prometheus API (instead of basic auth).
    prometheus_bearer_token: str | None = None
    #: The RabbitMQ management API's user (its default guest account).
    rabbitmq_username: str = "guest"
    rabbitmq_password: str = "guest"
    #: AWS keys for CloudWatch; without them, the DTRS's credentials of the
    #: instance's site are used, as the original did, then boto3's chain.
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    #: AWS region of CloudWatch (the original used boto's default, us-east-1).
    aws_region: str = "us-east-1"
    #: Another CloudWatch endpoint (a test server, a private endpoint).
    aws_endpoint_url: str | None = None
    #: Reads a queue's ready messages and consumers over plain AMQP
    #: (passive declare) when the management API does not answer:
    #: ``probe(vhost, queue) -> (ready, consumers)``.  The worker wires it
    #: (``epum.messaging.queue_probe``); the sensors package may not import
    #: an AMQP library itself (the import contract).
    amqp_queue_probe: Callable[[str, str], tuple[int, int]] | None = None
