#!/usr/bin/env python3
"""Interop check: the real openpush binary driven by third-party client libraries.

None of these clients was written for openpush; each is used unmodified, through its
public API only:

- apprise (its ntfy plugin) publishes a notification with title, priority and tags;
- pywebpush (http_ece aes128gcm, py_vapid VAPID) posts encrypted Web Push messages to an
  endpoint topic (``/up…?up=1``) and to an OpenPush app's ``/push/<token>`` endpoint;
  what arrives (ntfy JSON poll, OpenPush SSE stream) is decrypted with http_ece;
- websockets subscribes to ``/<topic>/ws``: open event, a published message, a ping.

Usage: python3 tests/interop/interop.py [path/to/openpush]   (default target/debug/openpush,
or $OPENPUSH_BIN). Starts the server on 127.0.0.1 (a free port) with a temporary database,
talks to nothing but 127.0.0.1, and ends with "N passed, M failed" (exit 1 on a failure).
"""

import base64
import http.client
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

# Only loopback: keep any proxy settings of the environment away from our requests.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import apprise  # noqa: E402
import http_ece  # noqa: E402
import py_vapid  # noqa: E402
import pywebpush  # noqa: E402
import requests  # noqa: E402
import websockets  # noqa: E402
import websockets.sync.client  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

TIMEOUT = 10  # seconds, for any one request or wait
HOST = "127.0.0.1"
USER, PASSWORD = "ann", "interop-pw-1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Server:
    """The binary, serving a fresh database in a temporary directory."""

    def __init__(self, binary: str):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="openpush-interop-")
        self.config = os.path.join(self.dir, "openpush.conf")
        with open(self.config, "w") as f:
            f.write(f"db = {os.path.join(self.dir, 'openpush.redb')}\n")
            f.write(f"listen = {HOST}:0\n")
            f.write("log_level = info\n")
        self.proc = None
        self.log = []

    def cli(self, *args, stdin=None) -> str:
        out = subprocess.run(
            [self.binary, *args, "--config", self.config],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert out.returncode == 0, f"openpush {' '.join(args)}: {out.returncode} {out.stderr}"
        return out.stdout.strip()

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", self.config],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = queue.Queue()

        def pump():
            for line in self.proc.stdout:
                self.log.append(line.rstrip("\n"))
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            try:
                line = lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise RuntimeError("the server did not say where it listens:\n" + "\n".join(self.log))
            if "listening on http://" in line:
                self.addr = line.split("listening on http://", 1)[1].strip()
                self.port = int(self.addr.rsplit(":", 1)[1])
                self.url = f"http://{HOST}:{self.port}"
                return

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=TIMEOUT)
        shutil.rmtree(self.dir, ignore_errors=True)


def ntfy_poll(server: Server, topic: str) -> list:
    """The cached messages of a topic, as the ntfy JSON poll returns them."""
    r = requests.get(
        f"{server.url}/{topic}/json",
        params={"poll": "1", "since": "all"},
        auth=(USER, PASSWORD),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, (r.status_code, r.text)
    events = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return [e for e in events if e.get("event") == "message"]


class Subscriber:
    """A Web Push subscription as a browser or a UnifiedPush app makes it (RFC 8291)."""

    def __init__(self, endpoint: str):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.auth_secret = os.urandom(16)
        self.info = {
            "endpoint": endpoint,
            "keys": {"p256dh": b64url(public), "auth": b64url(self.auth_secret)},
        }

    def decrypt(self, body: bytes) -> bytes:
        return http_ece.decrypt(
            body,
            private_key=self.private_key,
            auth_secret=self.auth_secret,
            version="aes128gcm",
        )


def vapid_key(scheme=py_vapid.Vapid02):
    """A fresh VAPID signing key: RFC 8292 `vapid t=…,k=…` (Vapid02) or the draft
    `WebPush …` with `Crypto-Key: p256ecdsa=…` (Vapid01)."""
    key = scheme()
    key.generate_keys()
    return key


def send_webpush(sub: Subscriber, cleartext: bytes, vapid_key, ttl: int, headers=None):
    """pywebpush's one-call API, with VAPID claims (aud is derived from the endpoint)."""
    return pywebpush.webpush(
        subscription_info=sub.info,
        data=cleartext,
        vapid_private_key=vapid_key,
        vapid_claims={"sub": "mailto:interop@example.org"},
        content_encoding="aes128gcm",
        ttl=ttl,
        timeout=TIMEOUT,
        headers=headers,
    )


def sse_event(server: Server, path: str, headers: dict, until, timeout: float = TIMEOUT):
    """Reads an SSE stream until `until(event)` is true for one event; returns that event."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    deadline = time.monotonic() + timeout
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200, (resp.status, resp.read(2000))
        event = {}
        while time.monotonic() < deadline:
            line = resp.fp.readline()
            if not line:
                raise AssertionError("the stream ended before the event came")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if event and until(event):
                    return event
                event = {}
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                event[field] = event[field] + "\n" + value if field in event else value
        raise AssertionError("no matching event before the deadline")
    finally:
        conn.close()


# ---------------------------------------------------------------------------- checks


def check_apprise_ntfy(server: Server):
    """apprise's ntfy plugin (ntfy:// is http) publishes title, priority, tags, message."""
    topic = "backups"
    url = f"ntfy://{USER}:{PASSWORD}@{HOST}:{server.port}/{topic}?priority=high&tags=floppy_disk,nas"
    ap = apprise.Apprise()
    assert ap.add(url), f"apprise did not accept {url}"
    plugin = ap[0]
    assert plugin.secure is False, "ntfy:// should be plain http"
    ok = ap.notify(title="NAS", body="Backup done")
    assert ok, "apprise reported a failed notification:\n" + "\n".join(server.log[-5:])
    messages = ntfy_poll(server, topic)
    assert len(messages) == 1, messages
    m = messages[0]
    assert m["topic"] == topic, m
    assert m["message"] == "Backup done", m
    assert m.get("title") == "NAS", m
    assert m.get("priority") == 4, m
    assert m.get("tags") == ["floppy_disk", "nas"], m
    assert "encoding" not in m, m


def check_apprise_ntfy_priority_names(server: Server):
    """apprise's other priority names map to ntfy's levels (max → 5, min → 1)."""
    topic = "alerts"
    for name, level in (("max", 5), ("min", 1)):
        url = f"ntfy://{USER}:{PASSWORD}@{HOST}:{server.port}/{topic}?priority={name}"
        ap = apprise.Apprise()
        assert ap.add(url), url
        assert ap.notify(body=f"prio {name}"), name
    got = {m["message"]: m.get("priority") for m in ntfy_poll(server, topic)}
    assert got == {"prio max": 5, "prio min": 1}, got


ENDPOINT_TOPIC = "upAbCdEf123456"


def check_webpush_endpoint_topic(server: Server):
    """pywebpush → endpoint topic (VAPID `vapid t=…,k=…`, TTL); ntfy poll; decrypt."""
    # The subscriber (the ntfy app, as UnifiedPush distributor) subscribes first: the
    # topic becomes the user's.
    assert ntfy_poll(server, ENDPOINT_TOPIC) == []
    sub = Subscriber(f"{server.url}/{ENDPOINT_TOPIC}?up=1")
    cleartext = b'{"msg":"hello from pywebpush","n":1}'
    resp = send_webpush(sub, cleartext, vapid_key(), ttl=3600, headers={"Urgency": "high"})
    sent = resp.request.headers
    assert sent["Authorization"].startswith("vapid t="), sent["Authorization"]
    assert sent["Content-Encoding"] == "aes128gcm", sent
    assert resp.status_code == 201, (resp.status_code, resp.text)
    assert resp.headers.get("TTL") == "3600", resp.headers
    assert resp.headers.get("Location", "").startswith("/message/"), resp.headers
    messages = ntfy_poll(server, ENDPOINT_TOPIC)
    assert len(messages) == 1, messages
    m = messages[0]
    assert m.get("encoding") == "base64", m
    body = base64.b64decode(m["message"])
    assert body == resp.request.body, "the body must arrive byte for byte"
    assert sub.decrypt(body) == cleartext
    assert m["expires"] - m["time"] == 3600, m
    assert m.get("priority") == 4, m  # Urgency: high


def check_webpush_legacy_vapid(server: Server):
    """The draft VAPID scheme (`Authorization: WebPush …` + Crypto-Key) is accepted too."""
    sub = Subscriber(f"{server.url}/{ENDPOINT_TOPIC}?up=1")
    cleartext = "draft vapid, ünïcödé".encode()
    resp = send_webpush(sub, cleartext, vapid_key(py_vapid.Vapid01), ttl=60)
    sent = resp.request.headers
    assert sent["Authorization"].startswith("WebPush "), sent["Authorization"]
    assert "p256ecdsa=" in sent.get("Crypto-Key", ""), sent
    assert resp.status_code == 201, (resp.status_code, resp.text)
    assert resp.headers.get("TTL") == "60", resp.headers
    bodies = [base64.b64decode(m["message"]) for m in ntfy_poll(server, ENDPOINT_TOPIC)]
    assert resp.request.body in bodies
    assert sub.decrypt(resp.request.body) == cleartext


def check_webpush_app_endpoint(server: Server, client_key: str):
    """pywebpush → an OpenPush app's `endpoint`; the OpenPush SSE stream; decrypt."""
    r = requests.post(
        f"{server.url}/application",
        headers={"X-Openpush-Key": client_key},
        json={"registration_id": "app1"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 201, (r.status_code, r.text)
    app = r.json()
    assert app["registration_id"] == "app1", app
    endpoint = app["endpoint"]
    assert endpoint == f"{server.url}/push/{app['routing_token']}", endpoint
    # GET on the endpoint: the UnifiedPush discovery answer.
    d = requests.get(endpoint, timeout=TIMEOUT)
    assert d.status_code == 200 and d.json() == {"unifiedpush": {"version": 1}}, d.text

    sub = Subscriber(endpoint)
    cleartext = b"app1: you have mail"
    resp = send_webpush(sub, cleartext, vapid_key(), ttl=600, headers={"Urgency": "low"})
    assert resp.request.headers["Authorization"].startswith("vapid "), resp.request.headers
    assert resp.status_code == 201, (resp.status_code, resp.text)
    assert resp.headers.get("TTL") == "600", resp.headers

    def is_ours(event):
        if "data" not in event:
            return False
        return json.loads(event["data"]).get("registration_id") == "app1"

    event = sse_event(server, "/subscribe", {"X-Openpush-Key": client_key}, is_ours)
    assert event.get("id", "").isdigit(), event
    data = json.loads(event["data"])
    assert data.get("encoding") == "base64", data
    assert data.get("urgency") == "low", data
    body = base64.b64decode(data["data"])
    assert body == resp.request.body
    assert sub.decrypt(body) == cleartext


def check_websocket(server: Server):
    """websockets → /<topic>/ws: open event, a published message as a text frame, a ping."""
    topic = "wsroom"
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    with websockets.sync.client.connect(
        f"ws://{HOST}:{server.port}/{topic}/ws",
        additional_headers={"Authorization": auth},
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        proxy=None,
    ) as ws:
        opened = json.loads(ws.recv(timeout=TIMEOUT))
        assert opened["event"] == "open" and opened["topic"] == topic, opened
        r = requests.post(
            f"{server.url}/{topic}",
            data="over the websocket".encode(),
            headers={"Title": "WS", "Tags": "ws"},
            auth=(USER, PASSWORD),
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, (r.status_code, r.text)
        while True:
            frame = ws.recv(timeout=TIMEOUT)
            assert isinstance(frame, str), "ntfy events travel as text frames"
            event = json.loads(frame)
            if event["event"] != "keepalive":
                break
        assert event["event"] == "message", event
        assert event["message"] == "over the websocket", event
        assert event["id"] == r.json()["id"], (event, r.text)
        assert event.get("title") == "WS" and event.get("tags") == ["ws"], event
        pong = ws.ping(b"interop")
        assert pong.wait(TIMEOUT), "no pong for the ping"
        assert ws.state is websockets.protocol.State.OPEN


def check_websocket_needs_auth(server: Server):
    """Without a password the upgrade of a user's topic is refused with 401, not 101."""
    try:
        with websockets.sync.client.connect(
            f"ws://{HOST}:{server.port}/wsroom/ws", open_timeout=TIMEOUT, proxy=None
        ):
            raise AssertionError("the upgrade was accepted without a user")
    except websockets.exceptions.InvalidStatus as e:
        assert e.response.status_code == 401, e.response.status_code


# ------------------------------------------------------------------------------ main


def main() -> int:
    binary = (
        sys.argv[1]
        if len(sys.argv) > 1
        else os.environ.get("OPENPUSH_BIN", os.path.join(ROOT, "target", "debug", "openpush"))
    )
    assert os.access(binary, os.X_OK), f"no binary at {binary}: run cargo build"
    # Everything below is bounded: no single run may hang CI.
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("interop run over 120 s")))
    signal.alarm(120)

    print(
        "clients: apprise %s, pywebpush %s, http_ece %s, py_vapid %s, websockets %s"
        % (
            apprise.__version__,
            _version("pywebpush"),
            _version("http_ece"),
            _version("py_vapid"),
            websockets.__version__,
        )
    )
    server = Server(binary)
    passed = failed = 0
    try:
        server.cli("user", "add", USER, "--password-stdin", stdin=PASSWORD + "\n")
        client_key = server.cli("client", "add", "--user", USER, "phone")
        assert len(client_key) >= 16 and "\n" not in client_key, client_key
        server.start()
        print(f"server: {server.binary} on {server.url}")
        checks = [
            ("apprise ntfy publish (title, priority, tags)", lambda: check_apprise_ntfy(server)),
            ("apprise ntfy priority names", lambda: check_apprise_ntfy_priority_names(server)),
            ("pywebpush → endpoint topic, ntfy poll, decrypt", lambda: check_webpush_endpoint_topic(server)),
            ("pywebpush draft VAPID (WebPush scheme)", lambda: check_webpush_legacy_vapid(server)),
            (
                "pywebpush → /push/<token>, OpenPush SSE, decrypt",
                lambda: check_webpush_app_endpoint(server, client_key),
            ),
            ("websockets /<topic>/ws: open, message, ping", lambda: check_websocket(server)),
            ("websockets /<topic>/ws without a user: 401", lambda: check_websocket_needs_auth(server)),
        ]
        for name, check in checks:
            started = time.monotonic()
            try:
                check()
            except Exception:
                failed += 1
                print(f"FAIL {name}")
                traceback.print_exc(file=sys.stdout)
            else:
                passed += 1
                print(f"ok   {name} ({time.monotonic() - started:.2f} s)")
            if server.proc.poll() is not None:
                failed += 1
                print(f"FAIL the server exited ({server.proc.returncode})")
                break
    except Exception:
        failed += 1
        print("FAIL setup")
        traceback.print_exc(file=sys.stdout)
    finally:
        if failed:
            print("--- server log (last 30 lines) ---")
            print("\n".join(server.log[-30:]))
        server.stop()
        signal.alarm(0)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist.replace("_", "-"))


if __name__ == "__main__":
    sys.exit(main())
