#!/usr/bin/env python3
"""Interop check: the real openpush binary driven by third-party client libraries.

None of these clients was written for openpush; each is used unmodified, through its
public API only:

- apprise (its ntfy plugin) publishes a notification with title, priority and tags;
- pywebpush (http_ece aes128gcm, py_vapid VAPID) posts encrypted Web Push messages to an
  endpoint topic (``/up…?up=1``) and to an OpenPush app's ``/push/<token>`` endpoint;
  what arrives (ntfy JSON poll, OpenPush SSE stream) is decrypted with http_ece;
- websockets subscribes to ``/<topic>/ws``: open event, a published message, a ping;
- ntfpy subscribes to ``/<topic>/json`` with requests' line iterator, which reads the body
  in 512-byte blocks, and publishes with its own sender: each event must arrive at once;
- websockets speaks Mozilla's autopush protocol at ``/`` (what Firefox and Sunup say:
  hello, register with and without a VAPID key, notification, ack, ``{}`` pings) while
  pywebpush posts to the ``/wpush/v1|v2/<token>`` endpoints it hands out (aes128gcm and
  the legacy aesgcm, VAPID required and checked on v2); http_ece decrypts what arrives.

Usage: python3 tests/interop/interop.py [path/to/openpush]   (default target/debug/openpush,
or $OPENPUSH_BIN). Starts the server on 127.0.0.1 (a free port) with a temporary database,
talks to nothing but 127.0.0.1, and ends with "N passed, M failed" (exit 1 on a failure).
"""

import base64
import http.client
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
import uuid

# Only loopback: keep any proxy settings of the environment away from our requests.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import apprise  # noqa: E402
import asyncio  # noqa: E402
from ntfpy.raw_send import raw_send as ntfpy_send  # noqa: E402
from ntfpy.raw_subscribe import raw_subscribe as ntfpy_subscribe  # noqa: E402
import http_ece  # noqa: E402
import py_vapid  # noqa: E402
import pywebpush  # noqa: E402
import requests  # noqa: E402
import websockets  # noqa: E402
import websockets.sync.client  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from openpush_server import HOST, TIMEOUT, Server  # noqa: E402

USER, PASSWORD = "ann", "interop-pw-1"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


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


class UserAgent:
    """A user agent of Mozilla's autopush WebSocket protocol, as Firefox's
    PushServiceWebSocket speaks it: the `push-notification` subprotocol, a `hello` (with
    the uaid it was given, if any), then JSON requests; `{}` is a ping."""

    def __init__(self, server: Server, uaid: str | None = None):
        self.server = server
        self.uaid = uaid
        self.connection = self.ws = None

    def __enter__(self):
        self.connection = websockets.sync.client.connect(
            f"ws://{HOST}:{self.server.port}/",
            subprotocols=["push-notification"],
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            proxy=None,
        )
        self.ws = self.connection.__enter__()
        assert self.ws.subprotocol == "push-notification", self.ws.subprotocol
        hello = {"messageType": "hello", "use_webpush": True, "broadcasts": {}}
        if self.uaid:
            hello["uaid"] = self.uaid
        self.send(hello)
        answer = self.recv()
        assert answer.get("messageType") == "hello", answer
        assert answer.get("status") == 200, answer
        assert answer.get("use_webpush") is True, answer
        assert answer.get("broadcasts") == {}, answer
        assert isinstance(answer.get("uaid"), str) and answer["uaid"], answer
        if self.uaid:
            assert answer["uaid"] == self.uaid, ("the uaid was not resumed", self.uaid, answer)
        self.uaid = answer["uaid"]
        return self

    def __exit__(self, *exc):
        return self.connection.__exit__(*exc)

    def send(self, message: dict):
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = TIMEOUT) -> dict:
        frame = self.ws.recv(timeout=timeout)
        assert isinstance(frame, str), f"autopush messages travel as text frames: {frame!r}"
        return json.loads(frame)

    def register(self, channel_id: str, key: str | None = None) -> dict:
        request = {"messageType": "register", "channelID": channel_id}
        if key is not None:
            request["key"] = key
        self.send(request)
        answer = self.recv()
        assert answer.get("messageType") == "register", answer
        assert answer.get("channelID") == channel_id, answer
        return answer

    def notification(self) -> dict:
        message = self.recv()
        assert message.get("messageType") == "notification", message
        return message

    def ack(self, notification: dict):
        self.send(
            {
                "messageType": "ack",
                "updates": [
                    {
                        "channelID": notification["channelID"],
                        "version": notification["version"],
                        "code": 100,
                    }
                ],
            }
        )

    def ping(self) -> list:
        """Sends `{}` and reads until the `{}` answer; returns what came before it (the
        requests before are answered in order, so an `ack` sent before is stored)."""
        self.ws.send("{}")
        before = []
        while True:
            message = self.recv()
            if message == {}:
                return before
            before.append(message)

    def quiet(self, seconds: float = 0.5) -> list:
        """Whatever arrives within `seconds` (nothing, usually)."""
        got = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(self.recv(timeout=left))
            except TimeoutError:
                break
        return got


def notification_body(notification: dict) -> bytes:
    """The `data` of a notification: base64url without padding."""
    data = notification["data"]
    assert "=" not in data and "+" not in data and "/" not in data, data
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def vapid_public(key, padded: bool = False) -> str:
    """A VAPID key's public point (65 bytes, uncompressed) as base64url, the `key` of an
    autopush `register`; Firefox sends it with its `=` padding."""
    raw = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def push_status(call) -> int:
    """The status of a push pywebpush reports as failed (it raises above 202)."""
    try:
        resp = call()
    except pywebpush.WebPushException as e:
        assert e.response is not None, e
        return e.response.status_code
    raise AssertionError(f"accepted: {resp.status_code} {resp.text}")


def header_params(value: str) -> dict:
    """`name=value` parameters of an Encryption or Crypto-Key header (`;` or `,`)."""
    params = {}
    for part in value.replace(",", ";").split(";"):
        name, sep, v = part.strip().partition("=")
        if sep:
            params[name.strip().lower()] = v.strip().strip('"')
    return params


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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


def check_ntfpy_streaming(server: Server):
    """ntfpy's subscriber reads /<topic>/json through requests' iter_lines (512-byte blocks):
    a short message must reach it at once, which a close-delimited body never does."""
    topic = "doorbell"
    url = f"http://{HOST}:{server.port}"
    auth = f"{USER}:{PASSWORD}"
    got = queue.Queue()

    def subscribe():
        try:
            asyncio.run(ntfpy_subscribe(url, topic, auth=auth, handler=got.put))
        except requests.exceptions.RequestException:
            pass  # the server stops at the end of the run, in the middle of the stream

    threading.Thread(target=subscribe, daemon=True).start()
    time.sleep(1)
    sent = ntfpy_send(url, topic, "ding", auth=auth, title="Door")
    assert sent.status_code == 200, sent.text
    started = time.monotonic()
    try:
        message = got.get(timeout=5)
    except queue.Empty:
        raise AssertionError("ntfpy's subscriber got nothing within 5 s") from None
    assert message.message == "ding", vars(message)
    assert getattr(message, "title", None) == "Door", vars(message)
    print(f"  ntfpy got the message {time.monotonic() - started:.2f} s after the publish")


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


def check_autopush_v1(server: Server):
    """autopush: hello → uaid, register without key → /wpush/v1/<token>; pywebpush
    (aes128gcm) → notification, decrypt; ack; after a reconnect the acked message is not
    sent again, an unacked one is."""
    with UserAgent(server) as ua:
        channel = str(uuid.uuid4())
        reg = ua.register(channel)
        assert reg.get("status") == 200, reg
        endpoint = reg.get("pushEndpoint", "")
        prefix = f"{server.url}/wpush/v1/"
        assert endpoint.startswith(prefix) and len(endpoint) > len(prefix), reg
        assert "/" not in endpoint[len(prefix) :], reg

        sub = Subscriber(endpoint)
        cleartext = b'{"title":"autopush","body":"first"}'
        resp = pywebpush.webpush(sub.info, cleartext, ttl=600, timeout=TIMEOUT)
        assert resp.request.headers["Content-Encoding"] == "aes128gcm", resp.request.headers
        assert resp.status_code == 201, (resp.status_code, resp.text)
        assert resp.headers.get("TTL") == "600", resp.headers
        first = ua.notification()
        assert first["channelID"] == channel, first
        assert isinstance(first.get("version"), str) and first["version"], first
        assert first.get("headers") == {"encoding": "aes128gcm"}, first
        assert 0 < first.get("ttl", 0) <= 600, first
        body = notification_body(first)
        assert body == resp.request.body, "the body must arrive byte for byte"
        assert sub.decrypt(body) == cleartext
        ua.ack(first)
        assert ua.ping() == [], "nothing but the ping's answer was due"
        uaid = ua.uaid

    # Acked: a new connection of the same user agent does not get it again.
    with UserAgent(server, uaid) as ua:
        assert ua.ping() == [] and ua.quiet() == [], "an acknowledged message came again"
        second = b"second, not acked"
        resp = pywebpush.webpush(sub.info, second, ttl=600, timeout=TIMEOUT)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        got = ua.notification()
        assert got["channelID"] == channel and got["version"] != first["version"], got
        assert sub.decrypt(notification_body(got)) == second

    # Not acked: sent again after the next hello, with the same version; a message
    # pushed while no connection is open is stored and follows it.
    third = b"third, pushed while offline"
    resp = pywebpush.webpush(sub.info, third, ttl=600, timeout=TIMEOUT)
    assert resp.status_code == 201, (resp.status_code, resp.text)
    with UserAgent(server, uaid) as ua:
        again = ua.notification()
        assert again["version"] == got["version"], ("the unacked message first", again, got)
        assert again["channelID"] == channel, again
        assert sub.decrypt(notification_body(again)) == second
        offline = ua.notification()
        assert offline["version"] not in (first["version"], got["version"]), offline
        assert sub.decrypt(notification_body(offline)) == third
        ua.ack(again)
        ua.ack(offline)
        assert ua.ping() == [] and ua.quiet() == []

    with UserAgent(server, uaid) as ua:
        assert ua.ping() == [] and ua.quiet() == [], "acknowledged messages came again"


def check_autopush_ping(server: Server):
    """autopush: `{}` is answered with `{}`, before and after a register."""
    with UserAgent(server) as ua:
        ua.ws.send("{}")
        assert ua.recv() == {}
        assert ua.register(str(uuid.uuid4())).get("status") == 200
        ua.ws.send("{}")
        assert ua.recv() == {}


def check_autopush_v2_vapid(server: Server):
    """autopush: register with an app server's VAPID key → /wpush/v2/<token>; pywebpush
    with that key → 201, decrypt; without VAPID 401, another key 403, aud of another
    origin 401, an expired token 401, the v1 path 404."""
    app_key = vapid_key(py_vapid.Vapid02)
    with UserAgent(server) as ua:
        channel = str(uuid.uuid4())
        reg = ua.register(channel, vapid_public(app_key))
        assert reg.get("status") == 200, reg
        endpoint = reg.get("pushEndpoint", "")
        prefix = f"{server.url}/wpush/v2/"
        assert endpoint.startswith(prefix) and len(endpoint) > len(prefix), reg
        sub = Subscriber(endpoint)

        no_vapid = push_status(lambda: pywebpush.webpush(sub.info, b"x", ttl=60, timeout=TIMEOUT))
        assert no_vapid == 401, no_vapid
        other = push_status(lambda: send_webpush(sub, b"x", vapid_key(py_vapid.Vapid02), ttl=60))
        assert other == 403, other
        elsewhere = push_status(
            lambda: pywebpush.webpush(
                sub.info,
                b"x",
                vapid_private_key=app_key,
                vapid_claims={
                    "sub": "mailto:interop@example.org",
                    "aud": "https://push.example.net",  # not this server's origin
                },
                ttl=60,
                timeout=TIMEOUT,
            )
        )
        assert elsewhere == 401, elsewhere
        # pywebpush renews an expired `exp`: sign with py_vapid and send with WebPusher.
        expired = app_key.sign(
            {"sub": "mailto:interop@example.org", "aud": server.url, "exp": int(time.time()) - 60}
        )
        resp = pywebpush.WebPusher(sub.info).send(b"x", expired, ttl=60, timeout=TIMEOUT)
        assert resp.status_code == 401, (resp.status_code, resp.text)
        token = endpoint[len(prefix) :]
        v1 = Subscriber(f"{server.url}/wpush/v1/{token}")
        wrong_path = push_status(lambda: send_webpush(v1, b"x", app_key, ttl=60))
        assert wrong_path == 404, wrong_path

        cleartext = "signed by the bound key ✓".encode()
        resp = send_webpush(sub, cleartext, app_key, ttl=300)
        authorization = resp.request.headers["Authorization"]
        assert authorization.startswith("vapid t="), authorization
        jwt = authorization[len("vapid t=") :].split(",", 1)[0]
        claims = json.loads(unb64url(jwt.split(".")[1]))
        assert claims["aud"] == server.url, claims  # pywebpush: the endpoint's origin
        assert resp.status_code == 201, (resp.status_code, resp.text)
        got = ua.notification()
        assert got["channelID"] == channel, got
        assert got.get("headers") == {"encoding": "aes128gcm"}, got
        assert sub.decrypt(notification_body(got)) == cleartext
        ua.ack(got)
        assert ua.ping() == [], "a refused push was delivered"


def check_autopush_v2_padded_key(server: Server):
    """autopush: a register key with `=` padding (as Firefox sends it) binds the channel
    too; the draft VAPID scheme (`WebPush` + `Crypto-Key: p256ecdsa=`) is accepted."""
    app_key = vapid_key(py_vapid.Vapid01)
    padded = vapid_public(app_key, padded=True)
    assert padded.endswith("="), padded
    with UserAgent(server) as ua:
        channel = str(uuid.uuid4())
        reg = ua.register(channel, padded)
        assert reg.get("status") == 200, reg
        endpoint = reg.get("pushEndpoint", "")
        assert endpoint.startswith(f"{server.url}/wpush/v2/"), reg
        sub = Subscriber(endpoint)
        other = push_status(lambda: send_webpush(sub, b"x", vapid_key(py_vapid.Vapid01), ttl=60))
        assert other == 403, other
        cleartext = b"draft VAPID to a v2 endpoint"
        resp = send_webpush(sub, cleartext, app_key, ttl=60)
        assert resp.request.headers["Authorization"].startswith("WebPush "), resp.request.headers
        assert resp.status_code == 201, (resp.status_code, resp.text)
        got = ua.notification()
        assert got["channelID"] == channel, got
        assert sub.decrypt(notification_body(got)) == cleartext
        ua.ack(got)
        assert ua.ping() == []


def decrypt_aesgcm(sub: Subscriber, notification: dict) -> bytes:
    """The legacy aesgcm: salt from the Encryption header, the sender's key (dh) from
    Crypto-Key, both as the notification's headers carry them."""
    headers = notification["headers"]
    salt = unb64url(header_params(headers["encryption"])["salt"])
    dh = unb64url(header_params(headers["crypto_key"])["dh"])
    return http_ece.decrypt(
        notification_body(notification),
        salt=salt,
        dh=dh,
        private_key=sub.private_key,
        auth_secret=sub.auth_secret,
        version="aesgcm",
    )


def check_autopush_aesgcm(server: Server):
    """autopush: pywebpush with the legacy aesgcm → v1 endpoint; the notification carries
    encoding, encryption and crypto_key exactly as sent; http_ece decrypts it."""
    with UserAgent(server) as ua:
        channel = str(uuid.uuid4())
        reg = ua.register(channel)
        assert reg.get("status") == 200, reg
        sub = Subscriber(reg["pushEndpoint"])
        cleartext = b"legacy aesgcm, as old app servers send it"
        resp = pywebpush.webpush(
            sub.info, cleartext, content_encoding="aesgcm", ttl=120, timeout=TIMEOUT
        )
        sent = resp.request.headers
        assert sent["Content-Encoding"] == "aesgcm", sent
        assert resp.status_code == 201, (resp.status_code, resp.text)
        got = ua.notification()
        assert got["channelID"] == channel, got
        assert got.get("headers") == {
            "encoding": "aesgcm",
            "encryption": sent["Encryption"],
            "crypto_key": sent["Crypto-Key"],
        }, (got.get("headers"), dict(sent))
        assert notification_body(got) == resp.request.body
        assert decrypt_aesgcm(sub, got) == cleartext
        ua.ack(got)
        assert ua.ping() == []


def check_autopush_aesgcm_vapid(server: Server):
    """autopush: aesgcm with draft VAPID to a v2 endpoint: one Crypto-Key header carries
    both `p256ecdsa=` (VAPID) and `dh=` (encryption)."""
    app_key = vapid_key(py_vapid.Vapid01)
    with UserAgent(server) as ua:
        channel = str(uuid.uuid4())
        reg = ua.register(channel, vapid_public(app_key))
        assert reg.get("status") == 200, reg
        sub = Subscriber(reg["pushEndpoint"])
        cleartext = b"aesgcm + WebPush VAPID"
        resp = pywebpush.webpush(
            sub.info,
            cleartext,
            vapid_private_key=app_key,
            vapid_claims={"sub": "mailto:interop@example.org"},
            content_encoding="aesgcm",
            ttl=120,
            timeout=TIMEOUT,
        )
        sent = resp.request.headers
        params = header_params(sent["Crypto-Key"])
        assert "p256ecdsa" in params and "dh" in params, sent["Crypto-Key"]
        assert resp.status_code == 201, (resp.status_code, resp.text)
        got = ua.notification()
        assert got["headers"]["crypto_key"] == sent["Crypto-Key"], (got, dict(sent))
        assert decrypt_aesgcm(sub, got) == cleartext
        ua.ack(got)
        assert ua.ping() == []


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
            ("ntfpy /<topic>/json streaming: each event at once", lambda: check_ntfpy_streaming(server)),
            ("websockets /<topic>/ws without a user: 401", lambda: check_websocket_needs_auth(server)),
            (
                "autopush: hello, register, pywebpush → v1, decrypt, ack, resend",
                lambda: check_autopush_v1(server),
            ),
            ("autopush: {} pings", lambda: check_autopush_ping(server)),
            (
                "autopush: VAPID key → v2: 201, 401, 403, aud/exp 401, v1 path 404",
                lambda: check_autopush_v2_vapid(server),
            ),
            ("autopush: padded key, draft VAPID → v2", lambda: check_autopush_v2_padded_key(server)),
            (
                "autopush: aesgcm → v1, headers passed through, decrypt",
                lambda: check_autopush_aesgcm(server),
            ),
            ("autopush: aesgcm + draft VAPID → v2", lambda: check_autopush_aesgcm_vapid(server)),
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
        signal.alarm(0)
    return server.finish(passed, failed)


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist.replace("_", "-"))


if __name__ == "__main__":
    sys.exit(main())
