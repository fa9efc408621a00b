"""The openpush binary for the interop checks (``interop.py``, ``home_assistant.py``):
a server on a fresh database in a temporary directory, on 127.0.0.1 and a free port, its
CLI, and its log. Standard library only, so that every check's environment can import it.
"""

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time

TIMEOUT = 10  # seconds, for any one request or wait
HOST = "127.0.0.1"


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

    def finish(self, passed: int, failed: int) -> int:
        """Stops the server (showing its log's tail after a failure), prints the count of
        checks, and gives the exit status."""
        if failed:
            print("--- server log (last 30 lines) ---")
            print("\n".join(self.log[-30:]))
        self.stop()
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
