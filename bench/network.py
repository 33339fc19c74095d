"""A network between a client and the database, on loopback: a TCP proxy that holds every
chunk of bytes for half a round trip in each direction before passing it on.

The replaced design reached the database over a network, one request per statement; on
loopback a round trip costs ~0.05 ms, which flatters it. Through this proxy the bench measures
it as it ran, with a round trip it states. One process of its own, one select() loop: select's
timeout has microsecond resolution (epoll's, and so asyncio's, is a millisecond), a single
thread adds no hand-over between threads to each chunk, and its own process never waits for
the bench's client to let go of Python's interpreter lock.
"""

import multiprocessing
import select
import socket
import time
from collections import deque
from types import TracebackType


class DelayProxy:
    """Listens on 127.0.0.1 (`port`) and relays each connection to 127.0.0.1:`target_port`,
    every chunk delivered `rtt_ms` / 2 after it arrived. A context manager: the process and
    every socket end with it."""

    def __init__(self, target_port: int, rtt_ms: float) -> None:
        self.target_port, self.one_way = target_port, rtt_ms / 2000
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        # each end's other end, and the ends still read (until their stream ends)
        self.partner: dict[socket.socket, socket.socket] = {}
        self.reading: set[socket.socket] = set()
        self.ended: set[socket.socket] = set()
        # (when due, destination, bytes or None for end of stream); one delay for all, so the
        # queue is in due order and each direction's bytes stay in order
        self.pending: deque[tuple[float, socket.socket, bytes | None]] = deque()
        # chunks relayed from clients to the database, counted by the proxy's process: proof
        # that a way's statements went through it (the bench reads it around each measurement)
        self.relayed = multiprocessing.get_context("fork").Value("q", 0, lock=False)
        self.clients: set[socket.socket] = set()
        # forked: the child inherits the listening socket, the parent keeps no copy of it.
        # terminate() ends the child, and with it every socket; an error ends it too, so the
        # bench's clients fail instead of waiting forever.
        self.process = multiprocessing.get_context("fork").Process(
            target=self.loop, name="delay-proxy", daemon=True
        )

    def __enter__(self) -> "DelayProxy":
        self.process.start()
        self.listener.close()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.process.terminate()
        self.process.join()

    def loop(self) -> None:
        while True:
            wait = 0.1
            if self.pending:
                wait = max(0.0, self.pending[0][0] - time.monotonic())
            readable, _, _ = select.select([self.listener, *self.reading], [], [], wait)
            for sock in readable:
                if sock is self.listener:
                    self.accept()
                elif sock in self.reading:
                    self.receive(sock)
            now = time.monotonic()
            while self.pending and self.pending[0][0] <= now:
                _, destination, data = self.pending.popleft()
                self.deliver(destination, data)

    def accept(self) -> None:
        client, _ = self.listener.accept()
        try:
            server = socket.create_connection(("127.0.0.1", self.target_port))
        except OSError:
            client.close()  # the database is down: the client sees its connection closed
            return
        for sock in (client, server):
            # each chunk goes out as it comes due, not held back to fill a segment
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.partner[client], self.partner[server] = server, client
        self.reading.update((client, server))
        self.clients.add(client)

    def receive(self, sock: socket.socket) -> None:
        try:
            data: bytes | None = sock.recv(1 << 16) or None
        except OSError:
            data = None
        if data is None:
            # the end of the stream travels too, after the bytes before it; read no more
            self.reading.discard(sock)
        elif sock in self.clients:
            self.relayed.value += 1
        self.pending.append((time.monotonic() + self.one_way, self.partner[sock], data))

    def deliver(self, destination: socket.socket, data: bytes | None) -> None:
        if destination.fileno() < 0:
            return  # closed after an error
        try:
            if data is not None:
                destination.sendall(data)
                return
            destination.shutdown(socket.SHUT_WR)
            self.ended.add(destination)
            if self.partner[destination] not in self.ended:
                return  # the other direction still flows
        except OSError:
            pass
        for end in (destination, self.partner.pop(destination)):
            self.partner.pop(end, None)
            self.reading.discard(end)
            self.ended.discard(end)
            self.clients.discard(end)
            end.close()
