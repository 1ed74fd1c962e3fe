"""AckWindow: handled deliveries acknowledged together, never before they are done."""

from __future__ import annotations

import pytest

from epum.messaging.acks import AckWindow


class FakeMessage:
    """Records the acks asked of it (the channel's basic.ack, as kombu's Message does)."""

    def __init__(self, tag: int, acks: list[tuple[int, bool]]):
        self.tag = tag
        self.acks = acks

    def ack(self, multiple: bool = False) -> None:
        self.acks.append((self.tag, multiple))


def deliver(window: AckWindow, acks: list, *tags: int) -> list:
    return [window.received(FakeMessage(tag, acks)) for tag in tags]


def test_a_full_batch_is_acknowledged_in_one_ack_up_to_its_last_message():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(3)
    one, two, three = deliver(window, acks, 1, 2, 3)
    window.done(one)
    window.done(two)
    assert acks == [] and window.pending == 2
    window.done(three)
    assert acks == [(3, True)] and window.pending == 0


def test_flush_acknowledges_what_is_pending_and_nothing_twice():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(8)
    for delivery in deliver(window, acks, 1, 2):
        window.done(delivery)
    window.flush()
    window.flush()
    assert acks == [(2, True)]


def test_a_window_of_one_acknowledges_each_message_at_once():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(1)
    for delivery in deliver(window, acks, 1, 2):
        window.done(delivery)
    assert acks == [(1, True), (2, True)]


def test_a_delivery_done_out_of_order_waits_for_the_one_before_it():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(2)
    one, two, three = deliver(window, acks, 1, 2, 3)
    window.done(two)
    window.done(three)
    # two are done, but a multiple ack of 3 would also acknowledge 1, still in hand
    assert acks == [] and window.pending == 2 and window.handling == 1
    window.done(one)
    assert acks == [(3, True)] and window.pending == 0 and window.handling == 0


def test_flush_acknowledges_the_done_behind_one_in_hand_each_on_its_own():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(8)
    one, two, three, four = deliver(window, acks, 1, 2, 3, 4)
    window.done(one)
    window.done(three)
    window.done(four)
    window.flush()
    assert acks == [(1, True), (3, False), (4, False)]
    window.done(two)
    window.flush()
    # 2 alone: 3 and 4 were acknowledged already (a second ack of a tag is a channel error)
    assert acks[3:] == [(2, True)]


def test_a_rejected_delivery_is_never_acknowledged():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(8)
    one, two = deliver(window, acks, 1, 2)
    window.settled(one)
    window.done(two)
    window.flush()
    assert acks == [(2, True)]


def test_forget_drops_the_window_of_a_lost_channel_without_acknowledging():
    acks: list[tuple[int, bool]] = []
    window = AckWindow(4)
    one, two = deliver(window, acks, 1, 2)
    window.done(one)
    assert window.forget() == [one, two]
    window.done(two)  # a handler finishing after the channel went
    window.flush()
    assert acks == [] and window.pending == 0 and not two.in_hand


def test_a_window_must_hold_a_message():
    with pytest.raises(ValueError, match="at least 1"):
        AckWindow(0)
