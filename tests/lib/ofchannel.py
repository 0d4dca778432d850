"""One OpenFlow 1.3 connection to a real Open vSwitch bridge, without os-ken's app
machinery: for integration tests and benchmarks that send exactly the messages the
controller builds (``controller.flows``, ``controller.bundles``) and read what the
switch answers.

    with OFChannel.listen() as chan:
        run("ovs-vsctl", "set-controller", bridge, chan.target)
        chan.accept()
        chan.request([flows.to_flowmod(spec), flows.barrier()])

The bridge connects to ``chan.target`` (a TCP port on loopback chosen by the kernel);
``accept`` completes the hello. Every message sent gets the next xid (as
``datapath.send_msg`` gives them); ``request`` sends messages and a barrier and returns
what the switch answered before the barrier's reply (errors, bundle replies). Echo
requests are answered by the reader thread.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time

from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

HEADER = struct.Struct("!BBHI")


class OFChannel:
    def __init__(self, listener: socket.socket):
        self._listener = listener
        self._sock: socket.socket | None = None
        self._xid = 0
        self._inbox: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self.desc = ProtocolDesc(ofp.OFP_VERSION)

    @classmethod
    def listen(cls) -> "OFChannel":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        return cls(sock)

    @property
    def target(self) -> str:
        return f"tcp:127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> "OFChannel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for sock in (self._sock, self._listener):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        if self._reader is not None:
            self._reader.join(timeout=2.0)

    def accept(self, timeout_s: float = 20.0) -> None:
        """Wait for the bridge to connect and exchange hellos."""
        self._listener.settimeout(timeout_s)
        self._sock, _ = self._listener.accept()
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        self.send(parser.OFPHello(self.desc))
        self.request([])        # the switch has our hello and answers barriers

    # -- sending --

    def send(self, msg) -> int:
        with self._lock:
            self._xid += 1
            msg.datapath = self.desc
            msg.xid = None
            msg.set_xid(self._xid)
            msg.serialize()
            self._sock.sendall(bytes(msg.buf))
            return self._xid

    def send_all(self, msgs) -> None:
        """Send ``msgs`` in one write (as a controller's send queue would)."""
        with self._lock:
            data = bytearray()
            for msg in msgs:
                self._xid += 1
                msg.datapath = self.desc
                msg.xid = None
                msg.set_xid(self._xid)
                msg.serialize()
                data += msg.buf
            self._sock.sendall(bytes(data))

    def request(self, msgs, timeout_s: float = 20.0) -> list:
        """Send ``msgs`` and a barrier; the messages the switch sent before the barrier
        reply (errors, bundle control replies), in order."""
        self.send_all(list(msgs))
        xid = self.send(parser.OFPBarrierRequest(self.desc))
        return self.wait_for(lambda m: isinstance(m, parser.OFPBarrierReply) and m.xid == xid, timeout_s)

    def wait_for(self, done, timeout_s: float = 20.0) -> list:
        """The messages received until one for which ``done(msg)`` is true (not included)."""
        got = []
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer from the switch within {timeout_s} s (got {got})")
            try:
                msg = self._inbox.get(timeout=left)
            except queue.Empty:
                continue
            if done(msg):
                return got
            got.append(msg)

    # -- receiving --

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= HEADER.size:
                version, msg_type, length, xid = HEADER.unpack_from(buf)
                if len(buf) < length:
                    break
                raw, buf = buf[:length], buf[length:]
                if msg_type == ofp.OFPT_ECHO_REQUEST:
                    reply = parser.OFPEchoReply(self.desc, data=raw[HEADER.size:])
                    reply.xid = xid
                    reply.serialize()
                    try:
                        with self._lock:
                            self._sock.sendall(bytes(reply.buf))
                    except OSError:
                        return          # closed meanwhile
                    continue
                if msg_type == ofp.OFPT_HELLO:
                    continue
                self._inbox.put(ofproto_parser.msg(self.desc, version, msg_type, length, xid, raw))
