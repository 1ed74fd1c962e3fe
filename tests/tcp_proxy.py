"""A TCP forwarder to one server, to cut or stall only the clients that use it.

``tests/zk_server.py`` puts one in front of the test ZooKeeper (the
``zk_proxy`` fixture); it knows nothing of ZooKeeper and works for any
TCP service.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

#: How long ``cut`` waits for the proxy's thread to have closed the connections.
CUT_TIMEOUT = 5.0


class TcpProxy:
    """A TCP forwarder to one server, to cut or stall only its own clients.

    Clients connect to ``hosts``.  ``cut()`` closes every connection open
    now (new ones are accepted as usual); ``block()`` stops forwarding until
    ``unblock()``, as a network partition would: connections open stall,
    and a connection made meanwhile is held unanswered (its client sees a
    connect that hangs) and forwarded once unblocked.  ``held_while_blocked``
    counts those, so a test can wait until a client has tried to reconnect
    during a partition.  One daemon thread does all the work.
    """

    def __init__(self, target_host: str, target_port: int):
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        # forwarding: the listener, the wake-up socket and every peer socket
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        # blocked: only the listener (to hold new clients) and the wake-up socket
        self._blocked_selector = selectors.DefaultSelector()
        self._blocked_selector.register(self._listener, selectors.EVENT_READ, None)
        self._blocked_selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._peers: dict[socket.socket, socket.socket] = {}
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._blocked = False
        self._cut_requested = False
        self._cut_done = threading.Event()
        self._closed = False
        self._held_count = 0
        self._thread = threading.Thread(target=self._loop, name="zk-test-proxy", daemon=True)
        self._thread.start()

    @property
    def hosts(self) -> str:
        """``host:port`` for a client that should go through the proxy."""
        return f"127.0.0.1:{self.port}"

    @property
    def held_while_blocked(self) -> int:
        """Connections made while blocked, since the proxy started (held, then forwarded)."""
        with self._lock:
            return self._held_count

    def cut(self) -> None:
        """Close every connection open now; clients may reconnect at once.

        Returns once the connections are closed (AssertionError if the
        proxy's thread has not done it within ``CUT_TIMEOUT`` seconds).
        """
        with self._lock:
            self._cut_requested = True
            self._cut_done.clear()
        self._wake()
        assert self._cut_done.wait(CUT_TIMEOUT), "the proxy did not cut its connections"

    def block(self) -> None:
        """Stop forwarding data; hold new connections unanswered (a partition)."""
        with self._lock:
            self._blocked = True
        self._wake()

    def unblock(self) -> None:
        """Forward again; connections that survived the partition carry on."""
        with self._lock:
            self._blocked = False
        self._wake()

    def close(self) -> None:
        """Close every connection and stop the proxy."""
        with self._lock:
            self._closed = True
        self._wake()
        self._thread.join(5)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _loop(self) -> None:
        try:
            while True:
                with self._lock:
                    closed, blocked, cut = self._closed, self._blocked, self._cut_requested
                if closed:
                    break
                if cut:
                    self._drop_all()
                    with self._lock:
                        self._cut_requested = False
                        self._cut_done.set()
                if blocked:
                    self._hold_new_clients()
                    continue
                for held in self._take_held():
                    self._join(held)
                for key, _ in self._selector.select(timeout=0.5):
                    if key.data == "wake":
                        self._drain_wake()
                    elif key.fileobj is self._listener:
                        client = self._accept()
                        if client is not None:
                            self._join(client)
                    else:
                        self._forward(key.fileobj)  # type: ignore[arg-type]
        finally:
            self._drop_all()
            self._selector.close()
            self._blocked_selector.close()
            self._listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _hold_new_clients(self) -> None:
        """While blocked: wait for a flag change, holding whoever connects meanwhile."""
        for key, _ in self._blocked_selector.select(timeout=0.5):
            if key.data == "wake":
                self._drain_wake()
                continue
            client = self._accept()
            if client is not None:
                with self._lock:
                    self._held.append(client)
                    self._held_count += 1

    def _take_held(self) -> list[socket.socket]:
        with self._lock:
            held, self._held = self._held, []
        return held

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)

    def _accept(self) -> socket.socket | None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return None
        return client

    def _join(self, client: socket.socket) -> None:
        """Connect ``client`` to the server and forward between them."""
        try:
            upstream = socket.create_connection(self._target, timeout=2)
        except OSError:
            client.close()
            return
        for sock in (client, upstream):
            sock.setblocking(True)
            sock.settimeout(2)
            self._selector.register(sock, selectors.EVENT_READ, "peer")
        self._peers[client] = upstream
        self._peers[upstream] = client

    def _forward(self, sock: socket.socket) -> None:
        other = self._peers.get(sock)
        if other is None:
            return
        try:
            data = sock.recv(65536)
            if data:
                other.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self._peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _drop_all(self) -> None:
        for sock in list(self._peers):
            self._drop(sock)
        for held in self._take_held():
            with contextlib.suppress(OSError):
                held.shutdown(socket.SHUT_RDWR)
            held.close()
