"""A test double speaking the original messaging library's (dashi's) wire format.

``DashiService`` consumes its queue on the system's exchange and answers a
request ONLY to its ``reply-to`` header (a routing key on the same
exchange), with ``{"result", "error"}``, as dashi does; it ignores the
standard ``reply_to`` property.  ``dashi_call`` is a dashi client's call: a
reply queue per call bound under a fresh routing key, named in the header,
and no standard reply properties at all.  Both keep what they saw so tests
can check the wire.
"""

from __future__ import annotations

import threading
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

#: dashi's prefix for the exception types every client knows.
ERROR_PREFIX = "dashi.exceptions."


class DashiError(Exception):
    """An error a handler raises to answer with ``exc_type`` (e.g. ``NotFoundError``)."""

    def __init__(self, exc_type: str, message: str):
        super().__init__(message)
        self.exc_type = exc_type


def _exchange(sysname: str | None) -> Exchange:
    name = f"{sysname}.default_dashi_exchange" if sysname else "default_dashi_exchange"
    return Exchange(name, type="direct", durable=False, auto_delete=False)


def _qualify(sysname: str | None, name: str) -> str:
    return f"{sysname}.{name}" if sysname else name


class DashiService:
    """A dashi service named ``name`` running ``ops`` (op name -> handler(**args)) in a thread."""

    def __init__(
        self,
        url: str,
        sysname: str | None,
        name: str,
        ops: dict[str, Callable],
        also_standard: bool = False,
    ):
        self.ops = ops
        self.also_standard = also_standard  # not dashi: also answer the standard reply_to
        self.requests: list[dict[str, Any]] = []  # {op, args, headers, properties}
        self._conn = Connection(url)
        self._exchange = _exchange(sysname)
        qualified = _qualify(sysname, name)
        self._queue = Queue(
            qualified, exchange=self._exchange, routing_key=qualified, durable=False
        )
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dashi-{name}", daemon=True)

    def start(self) -> DashiService:
        """Start consuming; returns once the queue exists."""
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the dashi double did not start")
        return self

    def stop(self) -> None:
        """Stop consuming and close the connection."""
        self._stop.set()
        self._thread.join(10)
        self._conn.release()

    def _run(self) -> None:
        channel = self._conn.channel()
        with Consumer(channel, [self._queue], callbacks=[self._on_request], accept=["json"]):
            self._ready.set()
            while not self._stop.is_set():
                try:
                    self._conn.drain_events(timeout=0.2)
                except TimeoutError:
                    continue

    def _on_request(self, body: dict[str, Any], message: Any) -> None:
        headers = dict(message.headers or {})
        self.requests.append(
            {"op": body.get("op"), "args": body.get("args"), "headers": headers,
             "properties": dict(message.properties or {})}
        )  # fmt: skip
        result, error = None, None
        try:
            result = self.ops[body["op"]](**(body.get("args") or {}))
        except DashiError as exc:
            error = {"exc_type": ERROR_PREFIX + exc.exc_type, "value": str(exc),
                     "traceback": traceback.format_exc()}  # fmt: skip
        except Exception as exc:
            error = {"exc_type": type(exc).__name__, "value": str(exc),
                     "traceback": traceback.format_exc()}  # fmt: skip
        reply_to = headers.get("reply-to")
        body = {"result": result, "error": error}
        with Producer(message.channel) as producer:
            if reply_to:  # dashi answers to the header only, on the exchange
                producer.publish(
                    body, exchange=self._exchange, routing_key=reply_to, serializer="json"
                )
            standard = message.properties.get("reply_to")
            if self.also_standard and standard:
                producer.publish(
                    body,
                    exchange="",
                    routing_key=standard,
                    correlation_id=message.properties.get("correlation_id"),
                    serializer="json",
                )
        message.ack()


def dashi_call(
    url: str, sysname: str | None, service: str, op: str, timeout: float = 10, **args: Any
) -> dict[str, Any]:
    """One call as a dashi client makes it; the raw reply body ``{result, error}``."""
    exchange = _exchange(sysname)
    msg_id = uuid.uuid4().hex
    queue = Queue(
        msg_id,
        exchange=exchange,
        routing_key=msg_id,
        durable=False,
        queue_arguments={"x-expires": int((timeout + 1) * 1000)},
    )
    replies: list[dict[str, Any]] = []

    def on_reply(body: dict[str, Any], message: Any) -> None:
        replies.append(body)
        message.ack()

    with Connection(url) as conn:
        channel = conn.channel()
        with Consumer(channel, [queue], callbacks=[on_reply], accept=["json"]):
            Producer(channel).publish(
                {"op": op, "args": args},
                exchange=exchange,
                routing_key=_qualify(sysname, service),
                headers={"reply-to": msg_id, "sender": _qualify(sysname, "dashi-client")},
                serializer="json",
            )
            try:
                conn.drain_events(timeout=timeout)
            except TimeoutError:
                raise AssertionError(f"no reply to {service}.{op} in {timeout} s") from None
        queue(channel).delete()
    return replies[0]
