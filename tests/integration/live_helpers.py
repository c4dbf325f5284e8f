"""Helpers for the live-progress integration tests: start the test server
(tests/coordinator/live_testd) on 127.0.0.1, talk to its control API, and
import Debian's python3-websocket even when another Python runs the tests.
Standard library plus python3-websocket only."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

SKIP = 77


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def import_websocket():
    """websocket-client from Debian (python3-websocket); None if missing."""
    try:
        import websocket  # noqa: F401
        return websocket
    except ImportError:
        pass
    for d in ("/usr/lib/python3/dist-packages",):
        if os.path.isdir(os.path.join(d, "websocket")) and d not in sys.path:
            sys.path.append(d)
            try:
                import websocket  # noqa: F811
                return websocket
            except ImportError:
                sys.path.remove(d)
    return None


class TestServer:
    """live_testd as a child process; stopped (by its own PID) on close."""

    def __init__(self, build, *args):
        exe = os.path.join(build, "tests", "coordinator", "live_testd")
        check(os.path.exists(exe), f"{exe} not built")
        self.proc = subprocess.Popen([exe, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        check(line.startswith("PORT "), "live_testd did not start: " + line)
        self.port = int(line.split()[1])
        self.base = f"http://127.0.0.1:{self.port}"

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        # Under RF_SANITIZE a memory error or leak shows here at exit.
        check("Sanitizer" not in err and self.proc.returncode == 0,
              f"live_testd exited with {self.proc.returncode}:\n{err[-4000:]}")
        return err

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def ws_url(self, path):
        return f"ws://127.0.0.1:{self.port}{path}"


def wait_for(pred, timeout, step=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise Failure(f"timed out after {timeout}s waiting for {what}")


def raw_ws_handshake(port, path, headers, rcvbuf=None):
    """A WebSocket client that does the handshake and then never reads."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
             "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(1)
        check(chunk, "connection closed during handshake")
        head += chunk
    check(head.startswith(b"HTTP/1.1 101"), "handshake refused: " + head.decode(errors="replace"))
    return s
