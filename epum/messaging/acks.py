"""Acknowledging handled messages in batches: one ``basic.ack`` for several deliveries.

A delivery is handed to ``AckWindow.done`` only once its effect is durable
(the store write returned, the reply published), so acknowledging it later
loses nothing: a connection lost before the acknowledgement goes out makes
the broker deliver those messages again (delivery is at least once in any
case).  Deliveries may be done in any order (handlers run side by side,
``epum.keyed``); none is acknowledged before it is done:

- the done deliveries at the front of the window (every delivery before
  them is settled) go out as one ``basic.ack`` with ``multiple`` set, once
  ``size`` deliveries are done, or at ``flush``;
- at ``flush`` (the consumer found no next message waiting, or a call was
  answered), a done delivery behind one still being handled is
  acknowledged on its own, so a slow request holds up no one's
  acknowledgement for long.

Every method runs on the consumer's thread (kombu's channel is not
thread-safe).  A window of size 1 acknowledges each delivery at once.
"""

from __future__ import annotations

import collections
from typing import Any

_HANDLING, _DONE, _SETTLED = "handling", "done", "settled"


class Delivery:
    """One message of the window, from its delivery until it is settled."""

    __slots__ = ("message", "state")

    def __init__(self, message: Any):
        self.message = message
        self.state = _HANDLING

    @property
    def in_hand(self) -> bool:
        """True until the delivery is done or settled (or its channel was lost)."""
        return self.state == _HANDLING


class AckWindow:
    """The deliveries of one channel not yet settled, in delivery order."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"an ack batch holds at least 1 message, not {size}")
        self.size = size
        self._window: collections.deque[Delivery] = collections.deque()
        self._done = 0

    @property
    def pending(self) -> int:
        """How many handled deliveries wait for their acknowledgement."""
        return self._done

    @property
    def handling(self) -> int:
        """How many deliveries are received and neither done nor settled."""
        return sum(1 for d in self._window if d.state == _HANDLING)

    def received(self, message: Any) -> Delivery:
        """Enter ``message`` (delivered on this window's channel, in delivery order)."""
        delivery = Delivery(message)
        self._window.append(delivery)
        return delivery

    def done(self, delivery: Delivery) -> None:
        """``delivery``'s effect is durable: acknowledge it (with the front of the window,
        once ``size`` deliveries are done)."""
        if delivery.state != _HANDLING:
            return
        delivery.state = _DONE
        self._done += 1
        if self._done >= self.size:
            self._ack_front()

    def settled(self, delivery: Delivery) -> None:
        """``delivery`` was settled otherwise (rejected): never acknowledge it."""
        if delivery.state == _DONE:
            self._done -= 1
        delivery.state = _SETTLED
        self._drop_settled_front()

    def flush(self) -> None:
        """Acknowledge every done delivery: the front in one ``basic.ack``, the others
        (behind one still being handled) each on its own."""
        self._ack_front()
        for delivery in self._window:
            if delivery.state == _DONE:
                delivery.message.ack()
                delivery.state = _SETTLED
                self._done -= 1

    def forget(self) -> list[Delivery]:
        """Drop the window without acknowledging it (its channel is gone, and the broker
        delivers those messages again); the deliveries that were in it."""
        dropped = list(self._window)
        for delivery in dropped:
            delivery.state = _SETTLED
        self._window.clear()
        self._done = 0
        return dropped

    def _ack_front(self) -> None:
        last = None
        while self._window and self._window[0].state != _HANDLING:
            delivery = self._window.popleft()
            if delivery.state == _DONE:
                last = delivery
                delivery.state = _SETTLED
                self._done -= 1
        if last is not None:
            last.message.ack(multiple=True)

    def _drop_settled_front(self) -> None:
        while self._window and self._window[0].state == _SETTLED:
            self._window.popleft()
