"""A tiny HTTP/1.1 server for the open-loop engine's tests, one behaviour per run.

python open_loop_server.py MODE [ARG]    prints "PORT <n>" once it listens on 127.0.0.1

delay MS    answers 200 JSON after MS milliseconds, keep-alive (one thread per connection);
            prints "HOLD <us>" per request: how long it really held it, from the kernel's
            receive timestamp of the request to its answer handed back to the kernel (on a
            busy CPU a thread wakes late, and that is the server's time, not the client's)
close       answers 200 with `Connection: close` and closes, like gunicorn's sync worker
status N    answers status N, keep-alive
silent      reads requests and never answers
reset       reads a request and closes without an answer
"""

from __future__ import annotations

import socket
import socketserver
import struct
import sys
import time

BODY = b'{"ok": 1}'
SO_TIMESTAMPNS = 35  # Linux; its control message type is the same number


def response(status: int, *, close: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(BODY)}\r\n"
    )
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + BODY


class Handler(socketserver.BaseRequestHandler):
    mode = "delay"
    arg = 0

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        buffer = b""
        while True:
            received_s = 0.0
            while b"\r\n\r\n" not in buffer:
                chunk, ancillary, _, _ = sock.recvmsg(65536, socket.CMSG_SPACE(16))
                if not chunk:
                    return
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and not received_s:
                        seconds, nanoseconds = struct.unpack("qq", data[:16])
                        received_s = seconds + nanoseconds / 1e9
                buffer += chunk
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            if self.mode == "delay":
                time.sleep(self.arg / 1000)
                sock.sendall(response(200, close=False))
                print(f"HOLD {round((time.time() - received_s) * 1e6)}", flush=True)
            elif self.mode == "close":
                sock.sendall(response(200, close=True))
                return
            elif self.mode == "status":
                sock.sendall(response(self.arg, close=False))
            elif self.mode == "reset":
                return
            # silent: keep reading, never answer


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main() -> None:
    Handler.mode = sys.argv[1]
    Handler.arg = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with Server(("127.0.0.1", 0), Handler) as server:
        print(f"PORT {server.server_address[1]}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
