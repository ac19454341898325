"""A local SMSC speaking just enough SMPP 3.4 for apprise's `smpp://`: bind_transmitter,
submit_sm (UCS-2 or GSM text, concatenated parts reassembled), enquire_link, unbind. Stands in
for the operator's SMS centre in tests and drills (127.0.0.1 only)."""
from __future__ import annotations

import socket
import socketserver
import struct
import threading
from dataclasses import dataclass

from .local_broker import free_port

BIND_TRANSMITTER, SUBMIT_SM, UNBIND, ENQUIRE_LINK = 0x02, 0x04, 0x06, 0x15
RESP = 0x80000000
UDH_PRESENT = 0x40


@dataclass(frozen=True, slots=True)
class Sms:
    system_id: str
    source: str
    destination: str
    text: str


def _cstring(body: bytes, pos: int) -> tuple[str, int]:
    end = body.index(b"\0", pos)
    return body[pos:end].decode("latin-1"), end + 1


def _decode(data: bytes, coding: int) -> str:
    if coding == 0x08:
        return data.decode("utf-16-be", "replace")
    return data.decode("latin-1", "replace")  # GSM 7-bit default alphabet is ASCII for our test texts


class Smsc:
    def __init__(self, port: int | None = None, system_id: str = "geowarn", password: str = "secret"):
        self.port = port or free_port()
        self.credentials = (system_id, password[:8])  # SMPP 3.4: at most 8 characters
        self.messages: list[Sms] = []
        self._parts: dict[tuple[str, int], dict[int, str]] = {}
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> "Smsc":
        smsc = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                bound = None
                sock: socket.socket = self.request
                while True:
                    header = _read(sock, 16)
                    if header is None:
                        return
                    length, command, _status, seq = struct.unpack(">IIII", header)
                    body = _read(sock, length - 16) or b""
                    if command == BIND_TRANSMITTER:
                        system_id, pos = _cstring(body, 0)
                        password, _ = _cstring(body, pos)
                        ok = (system_id, password) == smsc.credentials
                        bound = system_id if ok else None
                        _send(sock, command | RESP, 0 if ok else 0x0E, seq, b"geowarn-smsc\0")
                    elif command == SUBMIT_SM:
                        if bound is None:
                            _send(sock, command | RESP, 0x04, seq, b"\0")  # ESME_RINVBNDSTS
                            continue
                        msg_id = smsc.submit(bound, body)
                        _send(sock, command | RESP, 0, seq, msg_id.encode() + b"\0")
                    elif command == UNBIND:
                        _send(sock, command | RESP, 0, seq, b"")
                        return
                    elif command == ENQUIRE_LINK:
                        _send(sock, command | RESP, 0, seq, b"")
                    else:
                        _send(sock, 0x80000000, 0x03, seq, b"")  # generic_nack: invalid command

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def submit(self, system_id: str, body: bytes) -> str:
        """One submit_sm of a bound client: the message stored (parts joined); its id."""
        _service, pos = _cstring(body, 0)
        pos += 2
        source, pos = _cstring(body, pos)
        pos += 2
        destination, pos = _cstring(body, pos)
        esm_class = body[pos]
        pos += 3
        _, pos = _cstring(body, pos)  # schedule_delivery_time
        _, pos = _cstring(body, pos)  # validity_period
        coding = body[pos + 2]
        sm_length = body[pos + 4]
        data = body[pos + 5:pos + 5 + sm_length]
        with self._lock:
            if esm_class & UDH_PRESENT:  # a part of a concatenated message: 05 00 03 ref total n
                udh_len = data[0]
                ref, total, n = data[3], data[4], data[5]
                parts = self._parts.setdefault((destination, ref), {})
                parts[n] = _decode(data[1 + udh_len:], coding)
                if len(parts) == total:
                    del self._parts[(destination, ref)]
                    self.messages.append(Sms(system_id, source, destination,
                                             "".join(parts[i] for i in range(1, total + 1))))
            else:
                self.messages.append(Sms(system_id, source, destination, _decode(data, coding)))
            return str(len(self.messages) + len(self._parts))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Smsc":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _read(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _send(sock: socket.socket, command: int, status: int, seq: int, body: bytes) -> None:
    sock.sendall(struct.pack(">IIII", 16 + len(body), command, status, seq) + body)
