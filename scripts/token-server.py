#!/usr/bin/env python3
"""A token server for docker-registry's `auth: token`, like Docker Hub's.

  token-server.py --dir DIR --user U --pass P [--anonymous-pull]
                  [--refresh-token T] [--issuer I] [--service S]

Generates DIR/key.pem and DIR/cert.pem (self-signed RSA, with openssl) unless
present, listens on 127.0.0.1, writes "127.0.0.1:PORT" to DIR/addr and logs
one line per request to DIR/token.log ("GET /token?... user=<name|->").

GET /token?service=S&scope=repository:NAME:ACTIONS with Basic U:P grants the
requested actions; without credentials it grants pull only if
--anonymous-pull; wrong credentials get 401. POST /token with
grant_type=refresh_token&refresh_token=T (docker's identity tokens) acts as
U. Tokens are RS256 JWTs with the certificate in "x5c", which the registry
checks against its rootcertbundle (DIR/cert.pem). python3 has no RSA, so the
signature comes from `openssl dgst -sha256 -sign`.
"""
import argparse
import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

ARGS = None
LOCK = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ensure_key(d):
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    if not (os.path.exists(key) and os.path.exists(cert)):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=chrun-token",
                        "-addext", "keyUsage=digitalSignature,keyCertSign"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return key, base64.b64encode(der).decode()


def sign(key, data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-binary"], input=data,
                          check=True, stdout=subprocess.PIPE).stdout


def make_token(subject, access):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [CERT_B64]}
    claims = {"iss": ARGS.issuer, "sub": subject, "aud": ARGS.service, "exp": now + 300,
              "nbf": now - 30, "iat": now, "jti": b64url(os.urandom(12)), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64url(sign(KEY, signing_input))


def parse_scopes(scopes, allowed):
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) < 3:
            continue
        typ, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
        acts = [a for a in actions if allowed is None or a in allowed]
        access.append({"type": typ, "name": name, "actions": acts})
    return access


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_line(self, user):
        with LOCK, open(os.path.join(ARGS.dir, "token.log"), "a") as f:
            f.write("%s %s user=%s\n" % (self.command, self.path, user or "-"))

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        user = None
        if auth.startswith("Basic "):
            try:
                u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                u, p = "", ""
            if u != ARGS.user or p != ARGS.password:
                self.log_line("bad:" + u)
                return self.reply(401, {"details": "incorrect username or password"})
            user = u
        self.log_line(user)
        if url.path != "/token":
            return self.reply(404, {})
        if user is None and not ARGS.anonymous_pull:
            return self.reply(401, {"details": "authentication required"})
        access = parse_scopes(q.get("scope", []), None if user else {"pull"})
        tok = make_token(user or "", access)
        self.reply(200, {"token": tok, "access_token": tok, "expires_in": 300})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        ok = (form.get("grant_type") == ["refresh_token"] and ARGS.refresh_token and
              form.get("refresh_token") == [ARGS.refresh_token])
        self.log_line("refresh:" + ("ok" if ok else "bad"))
        if not ok:
            return self.reply(401, {"details": "invalid refresh token"})
        access = parse_scopes(" ".join(form.get("scope", [])).split(" "), None)
        tok = make_token(ARGS.user, access)
        self.reply(200, {"access_token": tok, "expires_in": 300})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def main():
    global ARGS, KEY, CERT_B64
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--pass", dest="password", required=True)
    ap.add_argument("--anonymous-pull", action="store_true")
    ap.add_argument("--refresh-token")
    ap.add_argument("--issuer", default="chrun-test-issuer")
    ap.add_argument("--service", default="chrun-test-registry")
    ARGS = ap.parse_args()
    os.makedirs(ARGS.dir, exist_ok=True)
    KEY, CERT_B64 = ensure_key(ARGS.dir)
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = os.path.join(ARGS.dir, "addr.tmp")
    with open(tmp, "w") as f:
        f.write("127.0.0.1:%d\n" % srv.server_address[1])
    os.rename(tmp, os.path.join(ARGS.dir, "addr"))
    srv.serve_forever()
    return 0


KEY = CERT_B64 = None

if __name__ == "__main__":
    sys.exit(main())
