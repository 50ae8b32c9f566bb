"""A tiny HTTP/1.1 server for the open-loop engine's tests, one behaviour per run.

python open_loop_server.py MODE [ARG]    prints "PORT <n>" once it listens on 127.0.0.1

delay MS    answers 200 JSON after MS milliseconds, keep-alive (one thread per connection);
            prints "HOLD <us>" per request: how long it really held it (on a busy CPU a
            thread wakes late, and that is the server's time, not the client's)
close       answers 200 with `Connection: close` and closes, like gunicorn's sync worker
status N    answers status N, keep-alive
silent      reads requests and never answers
reset       reads a request and closes without an answer
"""

from __future__ import annotations

import socket
import socketserver
import sys
import time

BODY = b'{"ok": 1}'


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
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            _, buffer = buffer.split(b"\r\n\r\n", 1)
            if self.mode == "delay":
                t0 = time.monotonic()
                time.sleep(self.arg / 1000)
                sock.sendall(response(200, close=False))
                print(f"HOLD {round((time.monotonic() - t0) * 1e6)}", flush=True)
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
