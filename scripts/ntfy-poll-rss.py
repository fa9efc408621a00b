#!/usr/bin/env python3
"""Server memory under ntfy polls that never read, with the largest messages it takes.

Usage: scripts/ntfy-poll-rss.py [BIN] [--polls N] [--topics N] [--plain]
       (BIN defaults to target/release/openpush; --plain: 4096-byte messages without fields)

One user fills its topics with the largest ntfy messages the server accepts: first a JSON
publish with a 60,000-byte title (refused since field limits exist), else a 4096-byte
message with a 1024-byte title, 512 bytes of tags and a 2048-byte click URL (the most that
fits `max_fields_bytes`). Then it opens N `GET /<topics>/json?poll=1&since=all` connections
with a small receive buffer and reads none of them; the server's VmRSS before and after
(the highest of a few readings) is printed. Loopback only; the server runs on a temporary
database with its default limits.
"""

import base64
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def request(addr, method, path, headers, body=b""):
    with socket.create_connection(addr) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        for name, value in headers.items():
            head += f"{name}: {value}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        s.sendall(head.encode() + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def main():
    args = sys.argv[1:]
    polls = int(args[args.index("--polls") + 1]) if "--polls" in args else 30
    topics = int(args[args.index("--topics") + 1]) if "--topics" in args else 4
    positional = [a for i, a in enumerate(args) if not a.startswith("--") and (i == 0 or not args[i - 1].startswith("--"))]
    binary = positional[0] if positional else "target/release/openpush"

    work = tempfile.mkdtemp(prefix="ntfy-poll-rss-")
    conf = os.path.join(work, "openpush.conf")
    with open(conf, "w") as f:
        f.write(f"db = {os.path.join(work, 'openpush.redb')}\n")
    server = subprocess.Popen(
        [binary, "serve", "--config", conf, "--listen", "127.0.0.1:0", "--log-level", "info"],
        stderr=subprocess.PIPE, text=True)
    addr = None
    while addr is None:
        line = server.stderr.readline()
        if not line:
            sys.exit("the server did not start")
        m = re.search(r"listening on http://([0-9.]+):(\d+)", line)
        if m:
            addr = (m.group(1), int(m.group(2)))
    # The rest of the log is read and dropped, so that the server never waits on the pipe.
    threading.Thread(target=lambda: server.stderr.read(), daemon=True).start()
    try:
        subprocess.run([binary, "user", "add", "alice", "--password-stdin", "--config", conf],
                       input="alice-pw\n", text=True, check=True, capture_output=True)
        auth = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
        names = [f"topic{n}" for n in range(topics)]
        huge = {"message": "m" * 4096, "title": "t" * 60_000}
        largest = {"message": "m" * 4096, "title": "t" * 1024, "tags": ["g" * 512],
                   "click": "https://example.com/" + "c" * 2028}
        shape = "60,000-byte title"
        body = lambda topic, fields: json.dumps({"topic": topic, **fields}).encode()
        if "--plain" in args:
            shape, huge = "4096-byte message, no fields", {"message": "m" * 4096}
        if request(addr, "POST", "/", {"Authorization": auth}, body(names[0], huge)) != 200:
            shape = "4096-byte message, 1024-byte title, 512 bytes of tags, 2048-byte click"
            huge = largest
            assert request(addr, "POST", "/", {"Authorization": auth}, body(names[0], huge)) == 200
        stored = 1
        for topic in names:
            while request(addr, "POST", "/", {"Authorization": auth}, body(topic, huge)) == 200:
                stored += 1
        time.sleep(1)
        before = rss_kib(server.pid)
        conns = []
        for _ in range(polls):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(addr)
            s.sendall((f"GET /{','.join(names)}/json?poll=1&since=all HTTP/1.1\r\n"
                       f"Host: test\r\nAuthorization: {auth}\r\n\r\n").encode())
            conns.append(s)
        after = before
        for _ in range(10):
            time.sleep(0.3)
            after = max(after, rss_kib(server.pid))
        print(f"{binary}: {stored} messages ({shape}) in {topics} topics; "
              f"{polls} unread polls: RSS {before} -> {after} KiB (+{(after - before) / 1024:.1f} MiB)")
        for s in conns:
            s.close()
    finally:
        server.kill()
        server.wait()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
