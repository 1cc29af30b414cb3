#!/usr/bin/python3
"""A SigV4-checking proxy for the storage integration test.

s3rver accepts any SigV4 signature, so on its own it proves nothing about ours. This proxy sits in
front of it and does what S3 does with each request: it recomputes the signature with botocore's
own signer (botocore.auth.S3SigV4Auth, from Debian's python3-botocore) over the headers the
request says it signed, with the secret the test configured, and answers 403
SignatureDoesNotMatch when they differ. It also requires x-amz-content-sha256, signed, and checks
it against the body unless it is UNSIGNED-PAYLOAD, as S3 does. Requests that pass are forwarded to
s3rver unchanged (Host included) and the answer is relayed.

Every request is written to the log, one line each: "ok METHOD TARGET" or "bad METHOD TARGET:
why", so the test can show which kinds of request were verified.

usage: sigv4_proxy.py --port-file FILE --upstream HOST:PORT --access-key-id ID --secret-file FILE
                      [--region R] --log FILE
"""
import argparse
import hashlib
import hmac
import http.client
import http.server
import os
import re
import sys
import threading

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
              "trailer", "upgrade", "expect"}
MAX_BODY = 64 << 20


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cfg = None
    log_lock = threading.Lock()

    def log_message(self, fmt, *args):  # quiet: the log file says what matters
        pass

    def record(self, verdict):
        with self.log_lock:
            with open(self.cfg.log, "a") as f:
                f.write(f"{verdict} {self.command} {self.path}\n")

    def refuse(self, status, code, message):
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def verify(self, body):
        """Returns None when the request is signed right, else the reason."""
        auth = self.headers.get("Authorization", "")
        m = AUTH_RE.match(auth)
        if not m:
            return "no AWS4-HMAC-SHA256 Authorization header"
        akid, day, region, service, signed, sig = m.groups()
        if akid != self.cfg.access_key_id:
            return f"unknown access key id {akid}"
        if region != self.cfg.region or service != "s3":
            return f"credential scope {region}/{service} is not {self.cfg.region}/s3"
        amz_date = self.headers.get("X-Amz-Date", "")
        if not re.match(r"^\d{8}T\d{6}Z$", amz_date) or amz_date[:8] != day:
            return "X-Amz-Date missing or not the credential's day"
        names = signed.split(";")
        for required in ("host", "x-amz-date", "x-amz-content-sha256"):
            if required not in names:
                return f"{required} is not signed"
        content_sha = self.headers.get("x-amz-content-sha256")
        if content_sha != "UNSIGNED-PAYLOAD" and content_sha != hashlib.sha256(body).hexdigest():
            return "x-amz-content-sha256 does not match the body"
        headers = {}
        for n in names:
            v = self.headers.get_all(n)
            if v is None:
                return f"signed header {n} is not in the request"
            headers[n] = ",".join(v)
        req = AWSRequest(method=self.command, url="http://" + self.headers["Host"] + self.path,
                         headers=headers, data=body)
        req.context["timestamp"] = amz_date
        signer = S3SigV4Auth(Credentials(akid, self.cfg.secret), "s3", region)
        canonical = signer.canonical_request(req)
        want = signer.signature(signer.string_to_sign(req, canonical), req)
        if not hmac.compare_digest(want, sig):
            return "signature does not match (canonical request: %r)" % canonical
        return None

    def handle_any(self):
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self.record("bad")
            self.refuse(501, "NotImplemented", "chunked bodies are not accepted here")
            return
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            self.record("bad")
            self.refuse(400, "EntityTooLarge", "body too large for the test proxy")
            return
        body = self.rfile.read(n) if n else b""
        why = self.verify(body)
        if why is not None:
            self.record("bad")
            with self.log_lock:
                with open(self.cfg.log, "a") as f:
                    f.write(f"  why: {why}\n")
            self.refuse(403, "SignatureDoesNotMatch",
                        "The request signature we calculated does not match the signature "
                        "you provided. Check your key and signing method.")
            return
        self.record("ok")
        up = http.client.HTTPConnection(self.cfg.upstream_host, self.cfg.upstream_port,
                                        timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            up.request(self.command, self.path, body=body if n else None, headers=headers)
            resp = up.getresponse()
            data = resp.read()
        except OSError as exc:
            self.refuse(502, "BadGateway", f"upstream: {exc}")
            return
        finally:
            up.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--access-key-id", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--log", required=True)
    cfg = ap.parse_args()
    with open(cfg.secret_file) as f:
        cfg.secret = f.read().strip()
    host, _, port = cfg.upstream.rpartition(":")
    cfg.upstream_host, cfg.upstream_port = host, int(port)
    Proxy.cfg = cfg
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    with open(cfg.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(cfg.port_file + ".tmp", cfg.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
