"""A round-robin TCP forwarder: the load balancer of two Odoo nodes on one machine.

``setup/run --nodes 2`` and the reliability suite's two-node scenario run
several Odoo servers on one database; something must spread the remote
systems' webhooks and queue_job's job requests over them, as nginx or
haproxy does in production (``docker-compose.multinode.yml``). Neither is
installed on a developer's machine, so this module does it with the
standard library only, at the connection level: each new connection goes to
the next node in turn (the one after it when that node refuses), its bytes
copied both ways until either side is done. A connection whose first request
is for ``/websocket`` goes to a node's gevent port instead, where Odoo's
prefork server serves websockets (its HTTP workers refuse them).

One connection, one node: a browser's kept-alive connection stays on its
node (Odoo's sessions are files in the shared data directory, so any node
knows them), while the senders of webhooks and queue_job's runner open a
connection per request and are spread request by request.
"""

import collections
import contextlib
import itertools
import selectors
import socket
import threading

# The request line is all the forwarder reads before choosing a node.
REQUEST_LINE_LIMIT = 8192
WEBSOCKET_PATH = b"/websocket"


class RoundRobinForwarder:
    """Listens on ``host:port`` and forwards each connection to the next of
    ``nodes`` (``(host, port)`` pairs), websocket handshakes to the next of
    ``websocket_nodes`` when given. ``port`` 0 picks a free one (see
    :attr:`port` once started). :attr:`connections` counts the connections
    each node took."""

    def __init__(self, nodes, *, websocket_nodes=(), host="127.0.0.1", port=0):
        if not nodes:
            raise ValueError("a forwarder needs at least one node")
        self.nodes = [tuple(node) for node in nodes]
        self.websocket_nodes = [tuple(node) for node in websocket_nodes]
        self.host = host
        self.port = port
        self.connections = collections.Counter()
        self._turns = {"http": itertools.cycle(range(len(self.nodes)))}
        if self.websocket_nodes:
            self._turns["websocket"] = itertools.cycle(range(len(self.websocket_nodes)))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = None
        self._thread = None
        self._open = set()  # sockets of the connections being forwarded

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def start(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(0.5)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, name="forwarder", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop listening and cut the connections still open."""
        self._stopping.set()
        if self._thread:
            self._thread.join()
            self._thread = None
        if self._listener:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # --- per connection --------------------------------------------------------

    def _accept(self):
        while not self._stopping.is_set():
            try:
                client, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _next_nodes(self, kind):
        """Every node of ``kind``, starting with the one whose turn it is."""
        nodes = self.nodes if kind == "http" else self.websocket_nodes
        with self._lock:
            first = next(self._turns[kind])
        return nodes[first:] + nodes[:first]

    def _serve(self, client):
        upstream = None
        try:
            client.settimeout(30)
            head = self._read_request_line(client)
            if not head:
                return
            path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
            is_websocket = self.websocket_nodes and path.startswith(WEBSOCKET_PATH)
            for node in self._next_nodes("websocket" if is_websocket else "http"):
                try:
                    upstream = socket.create_connection(node, timeout=5)
                except OSError:
                    continue  # that node is down: the next one takes it
                self.connections[node] += 1
                break
            else:
                return
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            upstream.sendall(head)
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.difference_update((client, upstream))
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    @staticmethod
    def _read_request_line(client):
        """The bytes read until the end of the request line (or the limit)."""
        head = b""
        while b"\r\n" not in head and len(head) < REQUEST_LINE_LIMIT:
            chunk = client.recv(REQUEST_LINE_LIMIT)
            if not chunk:
                break
            head += chunk
        return head

    def _pipe(self, client, upstream):
        """Copy bytes both ways until both sides are done (or the forwarder stops).

        A side that ends its sending (a runner giving up waiting after its
        1 s timeout) only ends that direction: the node still finishes the
        job it was asked to run and its answer is dropped, as with a direct
        connection.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            reading = 2
            while reading and not self._stopping.is_set():
                for key, _events in selector.select(timeout=0.5):
                    source, target = key.fileobj, key.data
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        target.sendall(data)
                        continue
                    selector.unregister(source)
                    reading -= 1
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
