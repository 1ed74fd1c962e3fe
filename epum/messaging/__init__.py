"""AMQP messaging: the RPC server and client, the wire format, the service clients.

The only package that imports kombu.  ``RpcServer`` serves a ``Dispatcher``
on a service queue; ``RpcClient`` calls and fires; ``clients`` wraps it for
each service epum talks to; ``EPUMOperations`` adapts the wire ops onto the
``EPUManagement`` facade.
"""

from epum.messaging.client import RpcClient
from epum.messaging.clients import (
    DTRSClient,
    EPUManagementClient,
    OUAgentClient,
    ProvisionerClient,
    SubscriberNotifier,
)
from epum.messaging.connection import broker_url, connection_from_settings, mask_url
from epum.messaging.dispatch import Dispatcher
from epum.messaging.epum_ops import EPUMOperations
from epum.messaging.exceptions import (
    BrokerUnavailableError,
    MessagingError,
    NoSuchServiceError,
    RpcTimeoutError,
)
from epum.messaging.metrics import OpMetrics
from epum.messaging.names import Names
from epum.messaging.server import RpcServer

__all__ = [
    "BrokerUnavailableError",
    "DTRSClient",
    "Dispatcher",
    "EPUMOperations",
    "EPUManagementClient",
    "MessagingError",
    "Names",
    "NoSuchServiceError",
    "OUAgentClient",
    "OpMetrics",
    "ProvisionerClient",
    "RpcClient",
    "RpcServer",
    "RpcTimeoutError",
    "SubscriberNotifier",
    "broker_url",
    "connection_from_settings",
    "mask_url",
]
