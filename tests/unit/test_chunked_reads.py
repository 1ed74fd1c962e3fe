"""The chunked AMQP reads: the same frames as py-amqp's, from far fewer ``recv`` calls."""

from __future__ import annotations

import errno
import random
import struct

import pytest
from amqp.exceptions import UnexpectedFrame

from epum.messaging.chunked_reads import READ_CHUNK, ChunkedTCPTransport


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    """One AMQP frame on the wire."""
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


class FakeSocket:
    """Hands out the bytes it was given, at most ``cut`` at a time (random sizes with a
    seed), then each of ``then`` (an exception to raise, or more bytes)."""

    def __init__(self, data: bytes = b"", cut: int | None = None, seed: int = 0):
        self.data = data
        self.cut = cut
        self.random = random.Random(seed)
        self.then: list[object] = []
        self.calls = 0

    def recv(self, n: int) -> bytes:
        self.calls += 1
        if not self.data and self.then:
            step = self.then.pop(0)
            if isinstance(step, BaseException):
                raise step
            self.data = step
        size = min(n, len(self.data))
        if self.cut is not None:
            size = min(size, self.random.randint(1, self.cut))
        out, self.data = self.data[:size], self.data[size:]
        return out

    def sendall(self, data: bytes) -> None:
        raise AssertionError("nothing is written in these tests")

    timeout: float | None = None
    timeouts_set = 0

    def gettimeout(self) -> float | None:
        return self.timeout

    def settimeout(self, timeout: float | None) -> None:
        self.timeouts_set += 1
        self.timeout = timeout


def transport_on(sock: FakeSocket) -> ChunkedTCPTransport:
    transport = ChunkedTCPTransport("127.0.0.1:5672")
    transport.sock = sock
    transport._setup_transport()
    return transport


FRAMES = [(1 + n % 3, n % 5, bytes([n % 251]) * (n * 37 % 700)) for n in range(200)]
STREAM = b"".join(frame(*f) for f in FRAMES)


def test_frames_come_out_whole_and_in_order_from_one_recv_per_chunk():
    sock = FakeSocket(STREAM)
    transport = transport_on(sock)
    assert [transport.read_frame() for _ in FRAMES] == FRAMES
    chunks = -(-len(STREAM) // READ_CHUNK)
    assert sock.calls == chunks < 3  # py-amqp's own transport: three per frame, 600


def test_frames_come_out_whole_however_the_socket_cuts_the_bytes():
    for cut in (1, 3, 7, 100, 5000):
        transport = transport_on(FakeSocket(STREAM, cut=cut, seed=cut))
        assert [transport.read_frame() for _ in FRAMES] == FRAMES


def test_a_timeout_in_the_middle_of_a_frame_loses_no_byte():
    whole = frame(1, 2, b"x" * 1000) + frame(3, 0, b"after")
    sock = FakeSocket(whole[:10])  # a header and three bytes of the payload
    sock.then = [TimeoutError(), whole[10:600], TimeoutError(), whole[600:]]
    transport = transport_on(sock)
    with pytest.raises(TimeoutError):
        transport.read_frame()
    with pytest.raises(TimeoutError):
        transport.read_frame()
    assert transport.read_frame() == (1, 2, b"x" * 1000)
    assert transport.read_frame() == (3, 0, b"after")


def test_a_closed_socket_is_an_error_and_nothing_is_waited_on_an_initial_eagain():
    transport = transport_on(FakeSocket(frame(1, 0, b"abc")[:5]))
    with pytest.raises(OSError, match="closed connection"):
        transport.read_frame()
    sock = FakeSocket()
    sock.then = [BlockingIOError(errno.EAGAIN, "again")]
    with pytest.raises(TimeoutError):
        transport_on(sock).read_frame()


def test_a_frame_larger_than_a_chunk_is_read_whole():
    big = (1, 1, bytes(range(256)) * (3 * READ_CHUNK // 256))
    transport = transport_on(FakeSocket(frame(*big) + frame(*FRAMES[5]), cut=READ_CHUNK))
    assert transport.read_frame() == big
    assert transport.read_frame() == FRAMES[5]


def test_a_frame_the_buffer_holds_whole_is_read_without_touching_the_timeout():
    sock = FakeSocket(STREAM[:1000])
    transport = transport_on(sock)

    def read_with_timeout() -> tuple:
        with transport.having_timeout(0.5):
            return transport.read_frame()

    first = read_with_timeout()  # the buffer is empty: the timeout is set, and put back
    assert sock.timeouts_set == 2 and sock.timeout is None
    read = [first]
    while sum(len(frame(*f)) for f in read) + len(frame(*FRAMES[len(read)])) <= 1000:
        read.append(read_with_timeout())
    assert read == FRAMES[: len(read)] and len(read) > 2
    assert sock.timeouts_set == 2  # each frame after the first was in the buffer
    sock.data = STREAM[1000:]
    assert read_with_timeout() == FRAMES[len(read)]  # cut short in the buffer: set again
    assert sock.timeouts_set == 4


def test_a_frame_with_a_wrong_end_octet_is_refused_as_py_amqp_refuses_it():
    bad = frame(1, 0, b"payload")[:-1] + b"\x00"
    for cut in (None, 3):  # whole in the buffer, or read in pieces (py-amqp's own path)
        transport = transport_on(FakeSocket(bad + frame(*FRAMES[1]), cut=cut))
        with pytest.raises(UnexpectedFrame, match="frame_end 0x00"):
            transport.read_frame()
