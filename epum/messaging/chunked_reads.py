"""An AMQP transport that reads the socket in chunks: one ``recv`` for many frames.

py-amqp's TCP transport asks the socket for exactly the bytes it parses
next: a frame's 7-byte header, its payload, its end octet.  A delivered
message is three frames (method, header, body), so nine ``recv`` calls,
which at thousands of messages a second is most of what reading costs.
``ChunkedTCPTransport`` asks for at least ``READ_CHUNK`` bytes each time and
keeps what it did not parse yet in the buffer py-amqp already keeps for a
frame cut short by a timeout, so a prefetch's worth of small messages is
read in one or two calls; and reading a frame the buffer holds whole does
not set the socket's timeout (which py-amqp does, and undoes, for every
frame).  Frames, timeouts and errors are as before: a read is still
"exactly n bytes, or the exception, with nothing lost".

``ChunkedAmqpTransport`` is the kombu transport (kombu's ``pyamqp`` one on
that connection class); ``epum.messaging.connection.make_connection`` picks
it for plain ``amqp://`` brokers.  TLS connections keep py-amqp's own
transport (its SSL reads are another matter).
"""

from __future__ import annotations

import errno
import struct
from typing import Any

from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport
from kombu.transport import pyamqp

#: The least a read asks the socket for (bytes): a prefetch of heartbeats or more.
READ_CHUNK = 65536

#: ``recv`` errors that mean "nothing yet, ask again".
_AGAIN = (errno.EAGAIN, errno.EINTR)

#: A frame's header: type (octet), channel (short), payload size (long); then the
#: payload and the frame-end octet.
_HEADER = struct.Struct(">BHI")
#: The octet that ends every frame.
FRAME_END = 0xCE


class _AsIs:
    """``having_timeout`` for a read the buffer serves: the socket, its timeout untouched."""

    __slots__ = ("sock",)

    def __init__(self, sock: Any):
        self.sock = sock

    def __enter__(self) -> Any:
        return self.sock

    def __exit__(self, *exc_info: object) -> None:
        return None


class ChunkedTCPTransport(TCPTransport):
    """py-amqp's TCP transport, reading up to ``READ_CHUNK`` bytes per ``recv``.

    The bytes not read yet are ``_read_buffer`` (py-amqp's: where a frame
    cut short by a timeout is put back) followed by ``_chunk[_pos:]`` (the
    rest of the last ``recv``), so a read copies only what it returns.
    """

    def _setup_transport(self) -> None:
        super()._setup_transport()
        self._chunk = b""
        self._pos = 0
        self._as_is = _AsIs(self.sock)

    def _whole_frame(self) -> tuple[int, int, int] | None:
        """The next frame's ``(type, channel, size)`` if the buffer holds all of it
        (header, payload, frame-end octet), else None."""
        chunk, pos = self._chunk, self._pos
        if self._read_buffer or len(chunk) - pos < _HEADER.size:
            return None
        header = _HEADER.unpack_from(chunk, pos)
        return header if len(chunk) - pos > _HEADER.size + header[2] else None

    def read_frame(self, unpack: Any = None) -> tuple[int, int, bytes]:
        """py-amqp's ``read_frame``: ``(type, channel, payload)`` of the next frame; one
        the buffer holds whole is cut from it at once, any other read py-amqp's way."""
        header = self._whole_frame()
        if header is None:
            return super().read_frame() if unpack is None else super().read_frame(unpack)
        kind, channel, size = header
        start = self._pos + _HEADER.size
        end = start + size
        if self._chunk[end] != FRAME_END:
            raise UnexpectedFrame(
                f"frame_end {self._chunk[end]:#04x} where {FRAME_END:#04x} belongs: "
                "the stream from the broker is out of step"
            )
        self._pos = end + 1
        return kind, channel, self._chunk[start:end]

    def having_timeout(self, timeout: float | None) -> Any:
        """py-amqp's ``having_timeout``, except that a read of a frame the buffer holds
        whole leaves the socket's timeout as it is: such a read cannot block, and each
        change of the timeout costs system calls (two changes per frame, else)."""
        if timeout is not None and self._whole_frame() is not None:
            return self._as_is
        return super().having_timeout(timeout)

    def _read(self, n: int, initial: bool = False, _errnos: tuple[int, ...] = _AGAIN) -> bytes:
        """Exactly ``n`` bytes, the rest kept; on any error every byte read so far is
        back in ``_read_buffer``, in order."""
        chunk, pos = self._chunk, self._pos
        if not self._read_buffer and len(chunk) - pos >= n:  # the common case
            self._pos = pos + n
            return chunk[pos : pos + n]
        buffer = self._read_buffer + chunk[pos:]
        self._chunk, self._pos = b"", 0
        try:
            while len(buffer) < n:
                try:
                    received = self._quick_recv(max(READ_CHUNK, n - len(buffer)))
                except OSError as exc:
                    if exc.errno not in _errnos:
                        raise
                    if initial and self.raise_on_initial_eintr:
                        raise TimeoutError() from exc
                    continue
                if not received:
                    raise OSError("Server unexpectedly closed connection")
                buffer += received
        except BaseException:
            self._read_buffer = buffer
            raise
        self._read_buffer = b""
        self._chunk, self._pos = buffer, n
        return buffer[:n]


class ChunkedConnection(pyamqp.Connection):
    """A py-amqp connection on ``ChunkedTCPTransport`` (py-amqp's own one for TLS)."""

    def Transport(
        self,
        host: str,
        connect_timeout: float | None,
        ssl: Any = False,
        read_timeout: float | None = None,
        write_timeout: float | None = None,
        socket_settings: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The transport for ``host`` (py-amqp's factory's arguments): chunked reads
        unless ``ssl``."""
        options = {
            "read_timeout": read_timeout,
            "write_timeout": write_timeout,
            "socket_settings": socket_settings,
            **kwargs,
        }
        if ssl:
            return super().Transport(host, connect_timeout, ssl, **options)
        return ChunkedTCPTransport(host, connect_timeout=connect_timeout, **options)


class ChunkedAmqpTransport(pyamqp.Transport):
    """kombu's ``amqp`` transport on ``ChunkedConnection``."""

    Connection = ChunkedConnection
