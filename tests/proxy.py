"""A TCP proxy in front of a real server, to take it away and bring it back (a database outage)."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards connections to 127.0.0.1:`port` to `target`. `stop()` closes the listener and cuts every open
    connection (new ones are refused); `hang()` leaves new ones unanswered; `start()` forwards again on the
    same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._hung: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._listener = listener = self._listen()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def hang(self) -> None:
        """Cut every open connection, then let new ones connect and never answer them (a dropped network)."""
        self.stop()
        self._hung = self._listen()  # the kernel completes the handshakes; nothing is ever read or forwarded

    def _listen(self) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        return listener

    def stop(self) -> None:
        with self._lock:
            listeners, self._listener, self._hung = (self._listener, self._hung), None, None
            cut, self._open = self._open, set()
        for sock in [*filter(None, listeners), *cut]:
            _close(sock)  # shutdown first: it stops a listener that a thread is blocked accepting on

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                stopped = self._listener is not listener  # accepted just as the proxy stopped
                if not stopped:
                    self._open.update((client, upstream))
            if stopped:
                _close(client)
                _close(upstream)
                return
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
