"""The selector of one network client, and the socket pair that wakes it from another thread.

Theory of operation
-------------------
A :class:`Poller` is what :class:`~kafka_sink.net.client.NetworkClient` and
its :class:`~kafka_sink.net.setup.Connector` wait on: one selector in which
every broker socket is registered with the readiness events its connection
waits for (``NodeConnection.mask``), and the reading end of a socket pair,
registered with no node. :meth:`Poller.wake` writes a byte to the other end,
so that a :meth:`select` under way on the sender thread returns; the sender
then calls :meth:`Poller.drain`.

Wake-ups are coalesced: between two drains only the first :meth:`wake`
writes a byte, so a busy application thread costs the sender one read.
The order of the drain matters (see :meth:`drain`).

After a fork the child must not touch what it shares with the parent: the
kernel's interest list of the selector and the socket pair.
:meth:`reset_after_fork` closes the child's descriptors only and opens new
ones, in place, so that whoever holds the poller keeps using the same object.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Callable

from kafka_sink.net.connection import NodeConnection

__all__ = ["READ", "WRITE", "Poller"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE


class Poller:
    """A selector of broker sockets, which :meth:`wake` interrupts from any thread."""

    __slots__ = ("_factory", "_wake_r", "_wake_w", "_wakeup_pending", "selector")

    def __init__(self, factory: Callable[[], selectors.BaseSelector]) -> None:
        self._factory = factory
        self.selector = factory()
        self._wakeup_pending = False
        self._wake_r, self._wake_w = self._open_wakeup()

    def watch(self, node: NodeConnection, sock: socket.socket, mask: int) -> None:
        """Register the node's new socket for ``mask``."""
        node.mask = mask
        self.selector.register(sock, mask, node)

    def want(self, node: NodeConnection, mask: int) -> None:
        """Wait for ``mask`` on the node's socket from now on."""
        if mask != node.mask and node.sock is not None:
            node.mask = mask
            self.selector.modify(node.sock, mask, node)

    def forget(self, sock: socket.socket) -> None:
        """Unregister a socket, if it is registered."""
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.selector.unregister(sock)

    def select(self, timeout: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait up to ``timeout`` seconds; a key whose ``data`` is None is a wake-up."""
        return self.selector.select(timeout)

    def wake(self) -> None:
        """Make a :meth:`select` under way (or the next one) return. Safe from any thread."""
        if self._wakeup_pending:
            return
        self._wakeup_pending = True
        # A full pipe already wakes the poll; a closed one means the client is closed.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def drain(self) -> None:
        """Consume the wake-ups, after :meth:`select` reported one."""
        # Drain, then clear: cleared first, a wake() landing in between would
        # write a byte that the drain swallows, and leave the flag set with
        # nothing to read, muting every later wake(). In this order a wake()
        # that sees the flag still set needs no byte: the poll under way returns.
        with contextlib.suppress(OSError):
            while len(self._wake_r.recv(4096)) == 4096:
                pass
        self._wakeup_pending = False

    def close(self) -> None:
        """Close the selector and the socket pair. Idempotent."""
        with contextlib.suppress(OSError):
            self.selector.close()
        self._close_wakeup()

    def reset_after_fork(self) -> None:
        """In a child process: a new selector and socket pair, the parent's left as they are."""
        # Closing the selector closes its descriptor only: the parent's epoll
        # instance and its registrations stay as they are.
        with contextlib.suppress(Exception):
            self.selector.close()
        self._close_wakeup()
        self._wakeup_pending = False
        self.selector = self._factory()
        self._wake_r, self._wake_w = self._open_wakeup()

    def _open_wakeup(self) -> tuple[socket.socket, socket.socket]:
        reader, writer = socket.socketpair()
        reader.setblocking(False)
        writer.setblocking(False)
        self.selector.register(reader, READ, None)
        return reader, writer

    def _close_wakeup(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()
