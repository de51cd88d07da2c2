#!/usr/bin/env python3
"""A hostile registry for chrun-pull's and chrun-push's tests: a proxy in
front of a real docker-registry that misbehaves in one chosen way.

  evil-registry.py --upstream HOST:PORT --mode MODE --addr-file FILE
                   [--log FILE] [--other-log FILE] [--blob-dir DIR] [--rate BPS]
                   [--stall-after BYTES]

Writes "127.0.0.1:PORT" to --addr-file once listening. --log gets one line per
request: "METHOD PATH range=<Range or -> auth=<yes|no>". HEAD, GET, POST, PUT
and PATCH pass through; Location headers naming the upstream are rewritten to
name this proxy, so upload sessions stay behind it. Modes (blob = GET of
/v2/NAME/blobs/DIGEST, manifest = GET of /v2/NAME/manifests/REF):

  proxy                pass everything through unchanged
  slow                 blob bodies trickle at --rate bytes/s (default 64 KiB/s)
  ignore-range         Range headers are dropped, so blobs come whole (200)
  cut                  the first GET of each blob without Range gets the full
                       Content-Length, half the body, then a closed connection
  lying-length         blob Content-Length 1000 bytes more than the blob
  extra-bytes          blob without Content-Length, 1000 extra bytes, then close
  corrupt              blob bytes with one byte flipped, same length
  wrong-digest-header  manifest replies with a false Docker-Content-Digest
  not-json             manifest by tag: 200 with a body that is not JSON
  huge-manifest        manifest by tag: 200, no Content-Length, 5 MiB streamed
  deep-index           manifest by tag: a chain of 6 nested indexes for this
                       host's platform (children served by digest)
  schema1              manifest by tag: a docker schema1 manifest
  redirect             blob: 307 to http://localhost:OTHER/..., where a second
                       listener logs "PATH auth=<header or none>" to
                       --other-log and serves the bytes from --blob-dir
                       (the registry's storage/docker/registry/v2/blobs)
  stall                blob: headers, the first --stall-after bytes of the
                       body (default 0; a resumed request gets the next
                       ones), then silence
  trickle              blob: headers with the full Content-Length, then one
                       byte of the body per second
  status-429           blob: always 429 with Retry-After: 1
  status-503           blob: always 503
  bad-challenge        every request: 401 with a malformed WWW-Authenticate
  redirect-401         manifest by tag: 307 to the other listener, which
                       answers 401 Bearer realm="http://localhost:OTHER/token"
                       (and logs any /token request with its Authorization)
  blob-redirect-401    the same for blobs
  token-redirect       every /v2/ request without Authorization: 401 Bearer
                       realm="http://127.0.0.1:PORT/token" (this listener);
                       /token (GET or POST): 307 to the other listener, which
                       logs "METHOD PATH auth=... body=<the POST body>"
  trickle-manifest     manifest by tag: 200 with the full Content-Length,
                       then one byte every 0.2 s
  web-server           every request: 404 with an HTML page, as an ordinary
                       web server (or a wrong port) answers
  put-wrong-digest     manifest PUT: the upstream stores it, but the reply's
                       Docker-Content-Digest names other bytes
  upload-redirect      blob upload POST: the upstream's 202 with its Location
                       moved to http://localhost:OTHER/..., where the second
                       listener logs "METHOD PATH auth=<header or none>" of
                       every PUT and PATCH and answers 404
  upload-fail-once     the first upload PUT that closes each blob's upload
                       (?digest=...) gets 500 without reaching the upstream
"""
import argparse
import hashlib
import http.client
import http.server
import json
import os
import platform
import re
import socket
import sys
import threading
import time
import urllib.parse

ARGS = None
LOG_LOCK = threading.Lock()
SEEN_BLOBS = set()
DEEP = {}  # digest -> (media type, bytes) for deep-index
HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}
BLOB_RE = re.compile(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$")
MANIFEST_RE = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")
UPLOADS_RE = re.compile(r"^/v2/(.+)/blobs/uploads/$")


def log(path, line):
    if not path:
        return
    with LOG_LOCK, open(path, "a") as f:
        f.write(line + "\n")


def host_platform():
    m = platform.machine()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386"}.get(m, m)
    return "linux", arch


def build_deep_index(depth=6):
    """A chain of nested OCI indexes: each one's only entry is the next."""
    os_, arch = host_platform()
    leaf = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": []}).encode()
    prev = leaf
    DEEP["sha256:" + hashlib.sha256(leaf).hexdigest()] = leaf
    for _ in range(depth):
        doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                              "digest": "sha256:" + hashlib.sha256(prev).hexdigest(),
                              "size": len(prev),
                              "platform": {"os": os_, "architecture": arch}}]}
        prev = json.dumps(doc).encode()
        DEEP["sha256:" + hashlib.sha256(prev).hexdigest()] = prev
    return prev


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def upstream(self):
        conn = http.client.HTTPConnection(ARGS.upstream, timeout=30)
        drop = HOP | {"host"} | ({"range"} if ARGS.mode == "ignore-range" else set())
        headers = {k: v for k, v in self.headers.items() if k.lower() not in drop}
        body = None
        n = int(self.headers.get("Content-Length", "0") or 0)
        if n:
            body = self.rfile.read(n)
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read() if self.command != "HEAD" else b""
        hdrs = [(k, self.own_location(v) if k.lower() == "location" else v)
                for k, v in r.getheaders() if k.lower() not in HOP]
        length = r.getheader("Content-Length")
        conn.close()
        return r.status, hdrs, data, length

    def own_location(self, value):
        upstream = "http://" + ARGS.upstream
        if value.startswith(upstream):
            return "http://127.0.0.1:%d%s" % (self.server.server_address[1],
                                              value[len(upstream):])
        return value

    def send(self, status, hdrs, data, length=None, close=False):
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)
            self.wfile.flush()

    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_PUT(self):
        self.handle_any()

    def do_PATCH(self):
        self.handle_any()

    def handle_any(self):
        log(ARGS.log, "%s %s range=%s auth=%s" % (
            self.command, self.path, self.headers.get("Range", "-"),
            "yes" if self.headers.get("Authorization") else "no"))
        mode = ARGS.mode
        blob = BLOB_RE.match(self.path) if self.command == "GET" else None
        manifest = MANIFEST_RE.match(self.path) if self.command == "GET" else None
        by_tag = manifest is not None and not manifest.group(2).startswith("sha256:")

        if mode == "token-redirect":
            if self.path.startswith("/token"):
                target = "http://localhost:%d%s" % (OTHER_PORT, self.path)
                return self.send(307, [("Location", target)], b"", 0)
            if not self.headers.get("Authorization"):
                realm = "http://127.0.0.1:%d/token" % self.server.server_address[1]
                return self.send(401, [("WWW-Authenticate",
                                        'Bearer realm="%s",service="evil"' % realm)], b"{}", 2)
        if (mode == "redirect-401" and by_tag) or (mode == "blob-redirect-401" and blob):
            target = "http://localhost:%d%s" % (OTHER_PORT, self.path)
            return self.send(307, [("Location", target)], b"", 0)
        if mode == "trickle-manifest" and by_tag:
            self.send(200, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                      None, 100000)
            try:
                for _ in range(100000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                self.close_connection = True
            return
        if mode == "web-server":
            page = b"<html><body><h1>404 Not Found</h1></body></html>\n"
            return self.send(404, [("Content-Type", "text/html")], page, len(page))
        if mode == "bad-challenge":
            return self.send(401, [("WWW-Authenticate", 'Bearer realm="http://127.0.0.1:1/token,'
                                    'service=x')], b"{}", 2)
        if mode == "not-json" and by_tag:
            return self.send(200, [("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                             b"this is not json", 16)
        if mode == "schema1" and by_tag:
            body = json.dumps({"schemaVersion": 1, "name": "x", "tag": "1",
                               "fsLayers": [], "history": []}).encode()
            return self.send(200, [("Content-Type",
                                    "application/vnd.docker.distribution.manifest.v1+prettyjws")],
                             body, len(body))
        if mode == "huge-manifest" and by_tag:
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
            self.send_header("Connection", "close")
            self.close_connection = True
            self.end_headers()
            try:
                self.wfile.write(b'{"schemaVersion":2,"x":"')
                chunk = b"x" * 65536
                for _ in range(80):  # 5 MiB
                    self.wfile.write(chunk)
                self.wfile.write(b'"}')
            except OSError:
                pass
            return
        if mode == "deep-index" and manifest:
            ref = manifest.group(2)
            body = DEEP.get(ref) if ref.startswith("sha256:") else DEEP_TOP
            if body is None:
                return self.send(404, [], b"", 0)
            return self.send(200, [("Content-Type", "application/vnd.oci.image.index.v1+json")],
                             body, len(body))
        if blob and mode in ("status-429", "status-503"):
            if mode == "status-429":
                return self.send(429, [("Retry-After", "1")], b"slow down", 9)
            return self.send(503, [], b"unavailable", 11)
        if blob and mode == "redirect":
            target = "http://localhost:%d/blobs/%s" % (OTHER_PORT, blob.group(2))
            return self.send(307, [("Location", target)], b"", 0)

        closing = re.search(r"[?&]digest=sha256(?::|%3[aA])([0-9a-f]{64})", self.path)
        if mode == "upload-fail-once" and self.command == "PUT" and closing and \
                closing.group(1) not in SEEN_BLOBS:
            SEEN_BLOBS.add(closing.group(1))
            self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            return self.send(500, [], b"boom", 4)
        status, hdrs, data, length = self.upstream()
        if mode == "put-wrong-digest" and self.command == "PUT" and \
                MANIFEST_RE.match(self.path) and status == 201:
            hdrs = [(k, v) for k, v in hdrs if k.lower() != "docker-content-digest"]
            hdrs.append(("Docker-Content-Digest", "sha256:" + hashlib.sha256(b"x").hexdigest()))
            return self.send(status, hdrs, data, len(data))
        if mode == "upload-redirect" and self.command == "POST" and status == 202 and \
                UPLOADS_RE.match(self.path):
            loc = urllib.parse.urlsplit(dict((k.lower(), v) for k, v in hdrs)["location"])
            hdrs = [(k, v) for k, v in hdrs if k.lower() != "location"]
            hdrs.append(("Location", "http://localhost:%d%s?%s" % (OTHER_PORT, loc.path,
                                                                   loc.query)))
            return self.send(status, hdrs, data, len(data))
        if manifest and mode == "wrong-digest-header" and status == 200:
            hdrs = [(k, v) for k, v in hdrs if k.lower() != "docker-content-digest"]
            hdrs.append(("Docker-Content-Digest", "sha256:" + hashlib.sha256(b"x").hexdigest()))
            return self.send(status, hdrs, data, len(data))
        if not blob or status not in (200, 206):
            return self.send(status, hdrs, data, len(data) if self.command != "HEAD" else length)
        digest = blob.group(2)
        if mode == "slow":
            self.send(status, hdrs, None, len(data))
            step = max(1, ARGS.rate // 10)
            try:
                for i in range(0, len(data), step):
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                self.close_connection = True
            return
        if mode == "cut" and "Range" not in self.headers and digest not in SEEN_BLOBS \
                and len(data) > 1:
            SEEN_BLOBS.add(digest)
            self.send(status, hdrs, None, len(data), close=True)
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "lying-length":
            return self.send(status, hdrs, data, len(data) + 1000, close=True)
        if mode == "extra-bytes":
            return self.send(status, hdrs, data + b"\0" * 1000, None, close=True)
        if mode == "corrupt" and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
            return self.send(status, hdrs, data, len(data))
        if mode == "stall":
            self.send(status, hdrs, None, len(data))
            try:
                self.wfile.write(data[:ARGS.stall_after])
                self.wfile.flush()
            except OSError:
                self.close_connection = True
                return
            time.sleep(3600)
            return
        if mode == "trickle":
            self.send(status, hdrs, None, len(data))
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                self.close_connection = True
            return
        return self.send(status, hdrs, data, len(data))


class OtherHandler(http.server.BaseHTTPRequestHandler):
    """The 'other host' a redirect points at: logs what reaches it."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def refuse_upload(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        while n > 0:
            n -= len(self.rfile.read(min(n, 65536)) or b"x" * n)
        log(ARGS.other_log, "%s %s auth=%s" % (self.command, self.path,
                                               self.headers.get("Authorization", "none")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_PUT(self):
        self.refuse_upload()

    def do_PATCH(self):
        self.refuse_upload()

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n).decode(errors="replace")
        log(ARGS.other_log, "POST %s auth=%s body=%s" % (
            self.path, self.headers.get("Authorization", "none"), body))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        log(ARGS.other_log, "%s auth=%s" % (self.path, self.headers.get("Authorization", "none")))
        if ARGS.mode in ("redirect-401", "blob-redirect-401") and self.path.startswith("/v2/"):
            realm = "http://localhost:%d/token" % OTHER_PORT
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Bearer realm="%s",service="other"' % realm)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if ARGS.mode in ("redirect-401", "blob-redirect-401", "token-redirect") and \
                self.path.startswith("/token"):
            body = json.dumps({"token": "stolen", "access_token": "stolen"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        m = re.match(r"^/blobs/sha256:([0-9a-f]{64})$", self.path)
        data = None
        if m and ARGS.blob_dir:
            p = os.path.join(ARGS.blob_dir, "sha256", m.group(1)[:2], m.group(1), "data")
            if os.path.exists(p):
                with open(p, "rb") as f:
                    data = f.read()
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        rng = self.headers.get("Range")
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ARGS, OTHER_PORT, DEEP_TOP
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--mode", default="proxy")
    ap.add_argument("--addr-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--other-log")
    ap.add_argument("--blob-dir")
    ap.add_argument("--rate", type=int, default=64 * 1024)
    ap.add_argument("--stall-after", type=int, default=0)
    ARGS = ap.parse_args()
    DEEP_TOP = build_deep_index()
    other = Server(("127.0.0.1", 0), OtherHandler)
    OTHER_PORT = other.server_address[1]
    threading.Thread(target=other.serve_forever, daemon=True).start()
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = ARGS.addr_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("127.0.0.1:%d\n" % srv.server_address[1])
    os.rename(tmp, ARGS.addr_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


OTHER_PORT = 0
DEEP_TOP = b""

if __name__ == "__main__":
    sys.exit(main())
