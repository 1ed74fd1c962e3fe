"""AckBatch: handled messages acknowledged together, once full or when flushed."""

from __future__ import annotations

import pytest

from epum.messaging.acks import AckBatch


class FakeMessage:
    """Records the acks asked of it (the channel's basic.ack, as kombu's Message does)."""

    def __init__(self, tag: int, acks: list[tuple[int, bool]]):
        self.tag = tag
        self.acks = acks

    def ack(self, multiple: bool = False) -> None:
        self.acks.append((self.tag, multiple))


def test_a_full_batch_is_acknowledged_in_one_ack_up_to_its_last_message():
    acks: list[tuple[int, bool]] = []
    batch = AckBatch(3)
    for tag in (1, 2):
        batch.done(FakeMessage(tag, acks))
    assert acks == [] and batch.pending == 2
    batch.done(FakeMessage(3, acks))
    assert acks == [(3, True)] and batch.pending == 0


def test_flush_acknowledges_what_is_pending_and_nothing_twice():
    acks: list[tuple[int, bool]] = []
    batch = AckBatch(8)
    batch.done(FakeMessage(1, acks))
    batch.done(FakeMessage(2, acks))
    batch.flush()
    batch.flush()
    assert acks == [(2, True)]


def test_a_batch_of_one_acknowledges_each_message_at_once():
    acks: list[tuple[int, bool]] = []
    batch = AckBatch(1)
    batch.done(FakeMessage(1, acks))
    batch.done(FakeMessage(2, acks))
    assert acks == [(1, True), (2, True)]


def test_forget_drops_the_batch_of_a_lost_channel_without_acknowledging():
    acks: list[tuple[int, bool]] = []
    batch = AckBatch(4)
    batch.done(FakeMessage(1, acks))
    batch.forget()
    batch.flush()
    assert acks == [] and batch.pending == 0


def test_a_batch_must_hold_a_message():
    with pytest.raises(ValueError, match="at least 1"):
        AckBatch(0)
