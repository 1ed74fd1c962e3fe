"""Acknowledging handled messages in batches: one ``basic.ack`` for several deliveries.

A message is handed to ``AckBatch.done`` only once its effect is durable
(the store write returned, the reply published), so acknowledging it later
loses nothing: a connection lost before the batch goes out makes the broker
deliver those messages again (delivery is at least once in any case).  The
batch goes out as one ``basic.ack`` with ``multiple`` set, acknowledging
every delivery of the channel up to the last one, when ``size`` messages
are done or when the consumer finds no next message waiting (``flush``).

Every method runs on the consumer's thread (kombu's channel is not
thread-safe).  A batch of size 1 acknowledges each message at once.
"""

from __future__ import annotations

from typing import Any


class AckBatch:
    """The handled, not yet acknowledged, messages of one channel, acknowledged together."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"an ack batch holds at least 1 message, not {size}")
        self.size = size
        self._last: Any = None
        self._count = 0

    @property
    def pending(self) -> int:
        """How many handled messages wait for their acknowledgement."""
        return self._count

    def done(self, message: Any) -> None:
        """``message``'s effect is durable: acknowledge it (with the batch once it is full).

        Messages must be given in delivery order, all from one channel.
        """
        self._last = message
        self._count += 1
        if self._count >= self.size:
            self.flush()

    def flush(self) -> None:
        """Acknowledge every message given so far, in one ``basic.ack``."""
        last = self._last
        if last is None:
            return
        self._last, self._count = None, 0
        last.ack(multiple=True)

    def forget(self) -> None:
        """Drop the batch without acknowledging it: its channel is gone, and the broker
        delivers those messages again."""
        self._last, self._count = None, 0
