#!/usr/bin/env python3
"""Manual end-to-end check of the autopush door with a real, unmodified Firefox.

Starts openpush (autopush door at /), a small HTTP server that serves index.html and sw.js
and collects what the page and its service worker report (/report/<what>), and a headless
Firefox whose push service points at openpush. The page subscribes with a VAPID key; this
script then sends with pywebpush and waits for the service worker's `push` event to report
the decrypted text. Then Firefox is stopped, a second message is sent while it is away, and
Firefox is started again: the stored message must arrive, and the page must find the same
subscription. Then an aesgcm push, and two that the v2 endpoint must refuse (401 unsigned,
403 signed by another key).

Usage: firefox_push.py OPENPUSH_BIN [--firefox firefox-esr] [--workdir DIR] [--timeout S]
(scripts/firefox-push.sh sets up the venv and runs it)
Exit status 0 when everything arrived; the logs stay in the work directory.
"""
import argparse
import http.server
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import requests

from py_vapid import Vapid, b64urlencode
from cryptography.hazmat.primitives import serialization
from pywebpush import webpush, WebPushException

HERE = os.path.dirname(os.path.abspath(__file__))
REPORTS = queue.Queue()
LOG_LOCK = threading.Lock()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=HERE, **kw)

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        what = self.path.rsplit("/", 1)[-1]
        self.send_response(204)
        self.end_headers()
        log(f"page reported {what}: {body}")
        REPORTS.put((what, body))

    def log_message(self, fmt, *args):
        pass


def log(msg):
    with LOG_LOCK:
        print(time.strftime("%H:%M:%S"), msg, flush=True)


def wait_report(kinds, timeout):
    """The next report of one of `kinds`; an error or a pushsubscriptionchange fails."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            what, body = REPORTS.get(timeout=max(0.1, deadline - time.time()))
        except queue.Empty:
            break
        if what == "error":
            raise SystemExit(f"FAIL: the page reported an error: {body}")
        if what == "pushsubscriptionchange":
            raise SystemExit("FAIL: Firefox dropped the subscription (pushsubscriptionchange)")
        if what in kinds:
            return what, body
    raise SystemExit(f"FAIL: no {'/'.join(kinds)} report within {timeout} s")


def wait_http(url, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"FAIL: {url} did not answer")


PREFS = {
    "dom.push.enabled": True,
    "dom.push.connection.enabled": True,
    "dom.push.testing.allowInsecureServerURL": True,
    "dom.push.loglevel": "debug",
    "dom.serviceWorkers.enabled": True,
    "dom.serviceWorkers.testing.enabled": True,
    "permissions.default.desktop-notification": 1,
    # Firefox's console (push service debug lines included) on stdout.
    "devtools.console.stdout.chrome": True,
    "devtools.console.stdout.content": True,
    "browser.dom.window.dump.enabled": True,
    # Quiet, offline-friendly start.
    "network.manage-offline-status": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "startup.homepage_welcome_url": "about:blank",
    "startup.homepage_welcome_url.additional": "",
    "browser.startup.page": 0,
    "browser.sessionstore.resume_from_crash": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "extensions.update.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "services.settings.server": "http://127.0.0.1:9/",
    # The new tab page's thumbnail service loads visited pages (this one too) in a hidden
    # browser of its own container: its service worker would subscribe there as well, and
    # Firefox then clears that container (unsubscribe, pushsubscriptionchange).
    "browser.pagethumbnails.capturing_disabled": True,
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.topsites": False,
}


class Firefox:
    def __init__(self, binary, profile, logdir):
        self.binary, self.profile, self.logdir = binary, profile, logdir
        self.proc, self.runs = None, 0

    def start(self, url):
        self.runs += 1
        out = open(os.path.join(self.logdir, f"firefox-{self.runs}.log"), "w")
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_CRASHREPORTER_DISABLE="1")
        self.proc = subprocess.Popen(
            [self.binary, "--headless", "--no-remote", "-profile", self.profile, url],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log(f"firefox started (pid {self.proc.pid}, log firefox-{self.runs}.log): {url}")

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        # SIGTERM makes Firefox quit cleanly (profile and push database written).
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        log(f"firefox stopped (status {self.proc.returncode})")
        # Firefox's content processes are in its session; make sure none is left.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def send(sub, text, vapid_pem, ttl=3600, encoding="aes128gcm"):
    try:
        r = webpush(sub, text, vapid_private_key=vapid_pem, content_encoding=encoding,
                    vapid_claims={"sub": "mailto:test@example.org"}, ttl=ttl)
    except WebPushException as e:
        raise SystemExit(f"FAIL: pywebpush: {e} {e.response.text if e.response is not None else ''}")
    log(f"pywebpush ({encoding}) -> {r.status_code} Location={r.headers.get('Location')} TTL={r.headers.get('TTL')}")
    if r.status_code != 201:
        raise SystemExit(f"FAIL: push answered {r.status_code}")


def expect_push(text, timeout):
    _, body = wait_report({"push"}, timeout)
    got = json.loads(body)["text"]
    if got != text:
        raise SystemExit(f"FAIL: push event text {got!r}, expected {text!r}")
    log(f"OK: the service worker's push event got {got!r}")


def main():
    # `timeout` and Ctrl-C: stop Firefox and openpush on the way out (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("openpush")
    ap.add_argument("--firefox", default=shutil.which("firefox-esr") or shutil.which("firefox"))
    ap.add_argument("--workdir")
    ap.add_argument("--timeout", type=int, default=60)
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="firefox-push-")
    os.makedirs(work, exist_ok=True)
    log(f"work directory {work}")
    log(f"{subprocess.run([args.firefox, '--version'], capture_output=True, text=True).stdout.strip()}")

    push_port, page_port = free_port(), free_port()
    conf = os.path.join(work, "openpush.conf")
    with open(conf, "w") as f:
        f.write("log_level = debug\n")
    db = os.path.join(work, "db.redb")
    oplog = open(os.path.join(work, "openpush.log"), "w")
    openpush = subprocess.Popen(
        [args.openpush, "serve", "--db", db, "--listen", f"127.0.0.1:{push_port}", "--config", conf],
        stdout=oplog, stderr=subprocess.STDOUT)
    log(f"openpush started (pid {openpush.pid}) on 127.0.0.1:{push_port}, log openpush.log")

    page = http.server.ThreadingHTTPServer(("127.0.0.1", page_port), Handler)
    threading.Thread(target=page.serve_forever, daemon=True).start()

    profile = os.path.join(work, "profile")
    os.makedirs(profile, exist_ok=True)
    prefs = dict(PREFS, **{"dom.push.serverURL": f"ws://127.0.0.1:{push_port}/"})
    with open(os.path.join(profile, "user.js"), "w") as f:
        for k, v in prefs.items():
            f.write(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n")

    vapid = Vapid()
    vapid.generate_keys()
    vapid_pem = os.path.join(work, "vapid.pem")
    vapid.save_key(vapid_pem)
    key = b64urlencode(vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    firefox = Firefox(args.firefox, profile, work)
    ok, failure = False, None
    try:
        wait_http(f"http://127.0.0.1:{push_port}/health")
        url = f"http://127.0.0.1:{page_port}/index.html?key={key}"
        firefox.start(url)
        _, body = wait_report({"subscription"}, args.timeout)
        sub = json.loads(body)["subscription"]
        log(f"endpoint: {sub['endpoint']}")

        first = "hello from pywebpush, Firefox online " + str(time.time())
        send(sub, first, vapid_pem)
        expect_push(first, args.timeout)

        time.sleep(3)  # let Firefox send its ack
        firefox.stop()
        second = "sent while Firefox was closed " + str(time.time())
        send(sub, second, vapid_pem)
        firefox.start(url)
        # The page (loaded again) and the service worker report in either order.
        pushed = again = None
        while pushed is None or again is None:
            what, body = wait_report({"push", "subscription"}, args.timeout)
            if what == "push":
                pushed = json.loads(body)["text"]
            else:
                again = json.loads(body)
        if pushed != second:
            raise SystemExit(f"FAIL: push event text {pushed!r}, expected {second!r}")
        log(f"OK: the service worker's push event got {pushed!r}")
        if again["fresh"] or again["subscription"]["endpoint"] != sub["endpoint"]:
            raise SystemExit(f"FAIL: after the restart the page has another subscription: {again}")
        log("OK: after the restart the page found the same subscription")

        # The older aesgcm encoding (Encryption and Crypto-Key headers, VAPID as
        # "Authorization: WebPush" with "Crypto-Key: p256ecdsa=") reaches Firefox too.
        third = "aesgcm from pywebpush " + str(time.time())
        send(sub, third, vapid_pem, encoding="aesgcm")
        expect_push(third, args.timeout)

        # The v2 endpoint is bound to the VAPID key: unsigned and foreign-signed pushes fail.
        unsigned = requests.post(sub["endpoint"], data=b"x" * 100,
                                 headers={"Content-Encoding": "aes128gcm", "TTL": "60"})
        other = Vapid()
        other.generate_keys()
        try:
            webpush(sub, "forged", vapid_private_key=other,
                    vapid_claims={"sub": "mailto:x@example.org"}, ttl=60)
            forged = 201
        except WebPushException as e:
            forged = e.response.status_code if e.response is not None else None
        log(f"unsigned push -> {unsigned.status_code}, push signed by another key -> {forged}")
        if unsigned.status_code != 401 or forged != 403:
            raise SystemExit("FAIL: the v2 endpoint took a push without its VAPID key")
        time.sleep(3)
        while not REPORTS.empty():
            what, body = REPORTS.get()
            if what != "retry":
                raise SystemExit(f"FAIL: unexpected report after the checks: {what} {body}")
        ok = True
    except BaseException as e:  # FAIL, timeout, Ctrl-C: clean up and show the frames first
        failure = e
    finally:
        firefox.stop()
        page.shutdown()
        openpush.send_signal(signal.SIGTERM)
        try:
            openpush.wait(10)
        except subprocess.TimeoutExpired:
            openpush.kill()
            openpush.wait()
        log(f"openpush stopped (status {openpush.returncode})")
    log(f"logs in {work}: openpush.log, firefox-N.log")
    frames = [l for n in range(1, firefox.runs + 1)
              for l in open(os.path.join(work, f"firefox-{n}.log"), errors="replace")
              if "wsSendMessage: Sending message" in l or "wsOnMessageAvailable()" in l]
    log(f"{len(frames)} autopush frames in Firefox's logs (firefox-*.log), abridged:")
    for line in frames:
        sent = "wsSendMessage" in line
        try:
            frame = json.loads(line.split('" "', 1)[1].rstrip().removesuffix('"').join('""'))
        except (IndexError, ValueError):
            frame = line.strip()
        print("   ", "firefox ->" if sent else "openpush ->",
              frame if len(frame) <= 200 else frame[:200] + "…", flush=True)
    if ok:
        log("PASS: subscribed; pushes online, stored while Firefox was closed, and aesgcm "
            "all reached the service worker; the v2 endpoint refused unsigned and forged ones")
    elif failure is not None:
        raise failure
    else:
        sys.exit(1)


if __name__ == "__main__":
    main()
