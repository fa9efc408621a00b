#!/usr/bin/env python3
"""Interop check of openpush-client with third-party Web Push libraries, both directions.

- pywebpush (http_ece aes128gcm) encrypts to the subscription that ``openpush-client
  register`` printed, signing with the key file ``openpush-client vapid-keygen`` wrote (so
  py_vapid reads its PEM), posts to the real server, and ``openpush-client listen --exec``
  decrypts it: the plaintext, OPENPUSH_APP, OPENPUSH_ID and OPENPUSH_URGENCY are checked;
- ``openpush-client send`` encrypts to a subscription whose keys Python made, with VAPID,
  and posts to a small capturing endpoint here: http_ece decrypts the body, py_vapid and
  the ``cryptography`` package verify the VAPID token, and TTL, Urgency, Topic and
  Content-Encoding are as asked; the endpoint's ``Location`` comes back on stdout.

Usage: python3 tests/interop/client_interop.py [openpush [openpush-client]]
(default target/debug/...). Talks to nothing but 127.0.0.1 and ends with
"N passed, M failed" (exit 1 on a failure).
"""

import base64
import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import http_ece  # noqa: E402
import py_vapid  # noqa: E402
import pywebpush  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, utils  # noqa: E402

TIMEOUT = 15
HOST = "127.0.0.1"
USER, PASSWORD = "ann", "interop-pw-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def wait_for(what, check):
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Server:
    """The openpush server on a fresh database, with user ann."""

    def __init__(self, binary: str, scratch: str):
        self.binary = binary
        self.config = os.path.join(scratch, "openpush.conf")
        with open(self.config, "w") as f:
            f.write(f"db = {os.path.join(scratch, 'openpush.redb')}\nlisten = {HOST}:0\n")
        self.proc = subprocess.Popen(
            [binary, "serve", "--config", self.config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in self.proc.stdout], daemon=True).start()
        while True:
            line = lines.get(timeout=TIMEOUT)
            if "listening on http://" in line:
                self.url = "http://" + line.split("listening on http://", 1)[1].strip()
                break
        subprocess.run(
            [binary, "user", "add", USER, "--password-stdin", "--config", self.config],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True, timeout=TIMEOUT,
        )

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=TIMEOUT)


def client(binary, *args, stdin=None) -> str:
    out = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 0, f"openpush-client {' '.join(args)}: {out.returncode} {out.stderr}"
    return out.stdout


def check_pywebpush_to_listen(server, cli, scratch):
    """pywebpush → the server → openpush-client listen --exec decrypts."""
    state = os.path.join(scratch, "state")
    sub = json.loads(client(
        cli, "register", "--server", server.url, "--user", USER, "--password-stdin",
        "--device", "interop-laptop", "--app", "news", "--state-dir", state,
        stdin=PASSWORD + "\n",
    ))
    assert sub["endpoint"].startswith(server.url + "/push/"), sub
    vapid_pem = os.path.join(scratch, "vapid.pem")
    public = client(cli, "vapid-keygen", "--out", vapid_pem).strip()
    # py_vapid reads the PEM that vapid-keygen wrote, and finds the same public key.
    v = py_vapid.Vapid02.from_file(vapid_pem)
    raw = v.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    assert b64url(raw) == public, (b64url(raw), public)

    out_dir = os.path.join(scratch, "out")
    os.mkdir(out_dir)
    exec_cmd = f'cat > "{out_dir}/$OPENPUSH_ID.body"; env | grep ^OPENPUSH_ | sort > "{out_dir}/$OPENPUSH_ID.env"'
    listen = subprocess.Popen(
        [cli, "listen", "--state-dir", state, "--exec", exec_cmd],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        messages = ["Hello from pywebpush, ünïcödé ✓".encode(), os.urandom(3000)]
        for i, message in enumerate(messages):
            resp = pywebpush.webpush(
                subscription_info=sub,
                data=message,
                vapid_private_key=vapid_pem,
                vapid_claims={"sub": "mailto:interop@example.org"},
                ttl=600,
                headers={"Urgency": "high" if i == 0 else "low"},
            )
            assert resp.status_code == 201, (resp.status_code, resp.text)
        wait_for("two messages handed on", lambda: len([f for f in os.listdir(out_dir) if f.endswith(".env")]) == 2)
        ids = sorted(int(f.split(".")[0]) for f in os.listdir(out_dir) if f.endswith(".env"))
        for id_, message, urgency in zip(ids, messages, ["high", "low"]):
            with open(f"{out_dir}/{id_}.body", "rb") as f:
                assert f.read() == message, f"message {id_} differs"
            with open(f"{out_dir}/{id_}.env") as f:
                env = f.read()
            assert env == f"OPENPUSH_APP=news\nOPENPUSH_ID={id_}\nOPENPUSH_URGENCY={urgency}\n", env
    finally:
        listen.terminate()
        listen.wait(timeout=TIMEOUT)


class Capture(http.server.BaseHTTPRequestHandler):
    """A push service that keeps what it is sent and answers 201 like RFC 8030's."""

    got = queue.Queue()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Capture.got.put((self.path, dict(self.headers), body))
        self.send_response(201)
        self.send_header("Location", "/m/42")
        self.send_header("TTL", self.headers.get("TTL", "0"))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def check_send_to_http_ece(server, cli, scratch):
    """openpush-client send → http_ece decrypts; the VAPID token verifies (py_vapid)."""
    httpd = http.server.ThreadingHTTPServer((HOST, 0), Capture)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://{HOST}:{httpd.server_address[1]}/wpush/abc"
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        public = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        sub_file = os.path.join(scratch, "sub.json")
        with open(sub_file, "w") as f:
            json.dump({"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(auth)}}, f)
        vapid_pem = os.path.join(scratch, "send-vapid.pem")
        vapid_public = client(cli, "vapid-keygen", "--out", vapid_pem).strip()
        for message in [b"x", "Grüße from openpush-client".encode(), os.urandom(3993)]:
            out = subprocess.run(
                [cli, "send", "--subscription", sub_file, "--vapid-key", vapid_pem,
                 "--subject", "mailto:ops@example.org", "--ttl", "120", "--urgency", "low",
                 "--topic", "news-1", "-"],
                input=message, capture_output=True, timeout=TIMEOUT,
            )
            assert out.returncode == 0, out.stderr
            assert out.stdout.decode().splitlines()[:2] == ["201 Created", "Location: /m/42"], out.stdout
            path, headers, body = Capture.got.get(timeout=TIMEOUT)
            assert path == "/wpush/abc", path
            assert headers["Content-Encoding"] == "aes128gcm", headers
            assert (headers["TTL"], headers["Urgency"], headers["Topic"]) == ("120", "low", "news-1"), headers
            assert len(body) <= 4096, len(body)
            plain = http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm")
            assert plain == message, "http_ece decrypted something else"
            authz = headers["Authorization"]
            assert py_vapid.Vapid02.verify(authz), authz
            token, k = authz.split(" ", 1)[1].split(",k=")
            assert k == vapid_public
            claims = json.loads(b64url_decode(token.split("=", 1)[1].split(".")[1]))
            assert claims["aud"] == f"http://{HOST}:{httpd.server_address[1]}", claims
            assert claims["sub"] == "mailto:ops@example.org", claims
            assert 0 < claims["exp"] - time.time() <= 24 * 3600, claims
            # And by hand with cryptography: ES256 over header.claims with the k= key.
            signed, sig = token.split("=", 1)[1].rsplit(".", 1)
            raw = b64url_decode(sig)
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(k))
            pub.verify(
                utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                signed.encode(), ec.ECDSA(hashes.SHA256()),
            )
    finally:
        httpd.shutdown()


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    server_bin = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/debug/openpush")
    cli = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "target/debug/openpush-client")
    scratch = tempfile.mkdtemp(prefix="openpush-client-interop-")
    server = Server(server_bin, scratch)
    passed = failed = 0
    try:
        for check in [check_pywebpush_to_listen, check_send_to_http_ece]:
            try:
                check(server, cli, scratch)
                print(f"ok   {check.__name__}: {check.__doc__}")
                passed += 1
            except Exception:
                print(f"FAIL {check.__name__}: {check.__doc__}")
                traceback.print_exc()
                failed += 1
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
