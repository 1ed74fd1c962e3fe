"""From one delivered message to its outcome: read the request, then run it.

``RequestHandler.read`` runs on the consumer's thread and touches only the
message: the sender header's length, the body's checks
(``epum.messaging.edge``) and the ``{op, args}`` envelope.  What it returns
(a ``Request``) holds everything ``run`` needs, so ``run`` may go on any
thread: it admits the caller, dispatches, and encodes the reply.  Neither
raises: every failure is an ``Outcome`` with an error reply and a reason.

``Request.order_key`` is what the server orders by when handlers run side
by side: requests with equal keys are handled in arrival order, and one
whose key is ``SERIAL`` alone.  An operation's handler says its key
(``order_key(args)``, derived from the operation's declaration); a handler
that says none has ``SERIAL``.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from epum.errors import WIRE_NAMES, BadRequestError, StoreUnavailableError
from epum.logcontext import new_request_id, request_context
from epum.messaging import envelope
from epum.messaging.callers import CallerPolicy
from epum.messaging.dispatch import Dispatcher
from epum.messaging.edge import decode_body
from epum.messaging.metrics import OpMetrics
from epum.messaging.names import Names
from epum.messaging.replies import Outcome, ReplyRoute
from epum.operation_spec import SERIAL
from epum.settings.limits import LimitSettings
from epum.validation import short

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """A request read off the wire, ready to run on any thread."""

    op: str
    args: dict[str, Any]
    sender: str | None
    user_id: Any
    request_id: str
    order_key: Hashable = SERIAL
    quick: bool = False


class RequestHandler:
    """Reads and runs requests for one ``Dispatcher`` (thread-safe)."""

    def __init__(
        self,
        names: Names,
        dispatcher: Dispatcher,
        callers: CallerPolicy,
        metrics: OpMetrics,
        limits: LimitSettings,
    ):
        self.names = names
        self.dispatcher = dispatcher
        self.callers = callers
        self.metrics = metrics
        self.limits = limits

    def read(self, message: Any, headers: dict[str, Any], route: ReplyRoute | None) -> Any:
        """The ``Request`` in ``message``, or the ``Outcome`` refusing it."""
        request_id = (route.correlation_id if route else None) or new_request_id()
        sender = headers.get("sender")
        sender = self.names.unqualify(sender) if isinstance(sender, str) else None
        try:
            if sender is not None and len(sender) > self.limits.max_name_length:
                raise BadRequestError(
                    f"refused a sender header of {len(sender)} characters, over "
                    f"limits.max_name_length ({self.limits.max_name_length})"
                )
            op, args = envelope.parse_request(decode_body(message, self.limits))
        except BadRequestError as exc:
            log.warning("refused a request from %s: %.500s", short(sender or "?", 80), exc)
            return Outcome(envelope.reply_error(exc), f"BadRequestError: {exc}")
        user_id = (message.properties or {}).get("user_id")
        key = self.dispatcher.order_key(op, args)
        return Request(op, args, sender, user_id, request_id, key, self.dispatcher.quick(op))

    def run(self, request: Request, route: ReplyRoute | None) -> Outcome:
        """The encoded reply to ``request`` (success or error; none for a fire that
        succeeded) and any failure."""
        op = request.op
        known = op in self.dispatcher
        with request_context(op if known else short(op, 40), request.sender, request.request_id):
            try:
                args = self.callers.admit(op, request.args, request.user_id)
                with self.metrics.measure(op if known else "unknown"):
                    result = self.dispatcher.dispatch(op, args)
            except StoreUnavailableError as exc:
                if route is not None:
                    log.warning("%s failed: the store is unavailable: %s", op, exc)
                return Outcome(envelope.reply_error(exc), f"{op}: {exc}", store_unavailable=True)
            except Exception as exc:
                if isinstance(exc, tuple(WIRE_NAMES)):
                    log.info("%s failed: %s: %.500s", op, type(exc).__name__, exc)
                else:
                    log.exception("%s failed with an unexpected error", op)
                return Outcome(envelope.reply_error(exc), f"{op}: {type(exc).__name__}: {exc}")
            if route is None:
                return Outcome("")  # a fire: no one reads a reply
            try:
                return Outcome(envelope.reply_ok(result))
            except (TypeError, ValueError) as exc:
                log.error("%s returned a result that is not JSON: %.500s", op, exc)
                error = TypeError(f"the result of {op} does not serialize to JSON: {exc}")
                return Outcome(envelope.reply_error(error), f"{op}: {error}")
