"""Errors of the transport itself (the service's own errors are in ``epum.errors``)."""

from __future__ import annotations

from epum.errors import EpumError


class MessagingError(EpumError):
    """A request could not be delivered or its reply not received."""


class BrokerUnavailableError(MessagingError, ConnectionError):
    """The broker could not be reached, or the connection broke mid-request."""


class NoSuchServiceError(MessagingError):
    """No queue is bound for the service: nobody could ever answer the request."""


class RpcTimeoutError(MessagingError, TimeoutError):
    """No reply arrived within the call's timeout (the request may still run)."""
