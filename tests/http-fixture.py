#!/usr/bin/env python3
"""A small HTTP server on 127.0.0.1 for ADD <url> tests (tests/unit/test-fetch.c).

Usage: http-fixture.py READY_FILE
Binds a free port, writes it to READY_FILE (atomically) and serves until
killed. Routes:
  /ok/file.txt          200 "hello\\n", Last-Modified 2015-10-21 07:28:00 GMT
  /cd/ignored-name      200 "cd\\n" with Content-Disposition naming "../x/name.tgz"
  /nolm                 200 "plain\\n" without Last-Modified
  /redirect-ok          302 to /ok/file.txt
  /redirect-chain/N     302 to /redirect-chain/N-1, N=0 to /ok/file.txt
  /redirect-file        302 to file:///etc/passwd
  /redirect-ftp         302 to ftp://127.0.0.1/x
  /redirect-none        302 without Location
  /huge-declared        200 with Content-Length 1 GiB (body never sent)
  /huge-stream          200 without Content-Length, 64 MiB of 'x' (closes)
  /short                200 with Content-Length 100, 10 bytes, then closes
  /trickle              200 with Content-Length 1000, one byte every 0.2 s
  /missing              404
"""
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def body(self, data, headers=()):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location):
        self.send_response(302)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        p = self.path
        if p == "/ok/file.txt":
            self.body(b"hello\n", [("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")])
        elif p == "/cd/ignored-name":
            self.body(b"cd\n", [("Content-Disposition", 'attachment; filename="../x/name.tgz"')])
        elif p == "/nolm":
            self.body(b"plain\n")
        elif p == "/redirect-ok":
            self.redirect("/ok/file.txt")
        elif p.startswith("/redirect-chain/"):
            n = int(p.rsplit("/", 1)[1])
            self.redirect("/ok/file.txt" if n <= 0 else "/redirect-chain/%d" % (n - 1))
        elif p == "/redirect-file":
            self.redirect("file:///etc/passwd")
        elif p == "/redirect-ftp":
            self.redirect("ftp://127.0.0.1/x")
        elif p == "/redirect-none":
            self.redirect(None)
        elif p == "/huge-declared":
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            self.close_connection = True
        elif p == "/huge-stream":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            chunk = b"x" * 65536
            try:
                for _ in range(1024):
                    self.wfile.write(chunk)
            except OSError:
                pass
        elif p == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.close_connection = True
            try:
                for _ in range(1000):
                    self.wfile.write(b"t")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif p == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


def main():
    ready = sys.argv[1]
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = ready + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, ready)
    srv.serve_forever()


if __name__ == "__main__":
    main()
