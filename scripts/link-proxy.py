#!/usr/bin/env python3
"""A slow or held link in front of a test registry, for chrun's cold-run
tests and bench (tests/t4120-run-cold-overlap.sh, scripts/bench.d/45-run-cold.sh).

  link-proxy.py --upstream HOST:PORT --addr-file FILE [--rate BYTES_PER_S]
                [--hold-fifo FIFO] [--hold-min BYTES] [--flip-tail] [--restart]

Writes "127.0.0.1:PORT" to --addr-file once listening; every request goes
to the upstream registry and its reply comes back:

  --rate        all reply bodies together at most this many bytes per second
                (one shared budget, as one network link; default unlimited)
  --hold-fifo   a blob reply of at least --hold-min bytes sends three
                quarters of its body, then waits until something is written
                to FIFO (the test's event), then sends the rest
  --flip-tail   such a blob's last-but-ten byte is flipped (same length), so
                its digest fails only at its very end
  --restart     the first reply for a blob of at least --hold-min bytes
                ends after three quarters of its body (connection closed);
                later requests lose their Range header, so the blob comes
                again whole, from byte 0 (HTTP 200)
"""
import argparse
import http.client
import http.server
import os
import re
import socket
import socketserver
import sys
import threading
import time

HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailers", "transfer-encoding", "upgrade", "host"}
BLOB = re.compile(r"^/v2/.+/blobs/(sha256:[0-9a-f]{64})$")
CHUNK = 64 * 1024


class Link:
    """One byte budget shared by every reply: a token bucket."""

    def __init__(self, rate):
        self.rate = rate
        self.lock = threading.Lock()
        self.next_free = time.monotonic()

    def take(self, n):
        if not self.rate:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_free)
            self.next_free = start + n / self.rate
            wait = self.next_free - now
        if wait > 0:
            time.sleep(wait)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self.relay()

    def do_GET(self):
        self.relay()

    def relay(self):
        conn = http.client.HTTPConnection(ARGS.upstream, timeout=60)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if ARGS.restart:
            hdrs = {k: v for k, v in hdrs.items() if k.lower() != "range"}
        conn.request(self.command, self.path, headers=hdrs)
        resp = conn.getresponse()
        body = resp.read() if self.command != "HEAD" else b""
        self.send_response(resp.status)
        length = None
        for k, v in resp.getheaders():
            if k.lower() in HOP:
                continue
            if k.lower() == "content-length":
                length = v
                continue
            if k.lower() == "location":
                v = v.replace(ARGS.upstream, self.server.addr)
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        blob = BLOB.match(self.path) and resp.status in (200, 206)
        big = blob and len(body) >= ARGS.hold_min
        if big and ARGS.restart and self.path not in SEEN:
            SEEN.add(self.path)
            try:
                self.wfile.write(body[:len(body) * 3 // 4])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            return
        big = big and ARGS.hold_fifo
        if big and ARGS.flip_tail:
            i = len(body) - 10
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
        hold_at = len(body) * 3 // 4 if big else None
        try:
            sent = 0
            while sent < len(body):
                end = min(len(body), sent + CHUNK)
                if hold_at is not None and sent < hold_at <= end:
                    end = hold_at
                LINK.take(end - sent)
                self.wfile.write(body[sent:end])
                self.wfile.flush()
                sent = end
                if hold_at is not None and sent == hold_at:
                    with open(ARGS.hold_fifo, "rb") as f:
                        f.read()
        except OSError:
            self.close_connection = True


def main():
    global ARGS, LINK
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--addr-file", required=True)
    ap.add_argument("--rate", type=float, default=0)
    ap.add_argument("--hold-fifo")
    ap.add_argument("--hold-min", type=int, default=1 << 20)
    ap.add_argument("--flip-tail", action="store_true")
    ap.add_argument("--restart", action="store_true")
    ARGS = ap.parse_args()
    LINK = Link(ARGS.rate)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.addr = "127.0.0.1:%d" % srv.server_address[1]
    tmp = ARGS.addr_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(srv.addr + "\n")
    os.rename(tmp, ARGS.addr_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


ARGS = None
LINK = None
SEEN = set()

if __name__ == "__main__":
    sys.exit(main())
