"""Helpers for integration tests: real coordinator and agent processes on
127.0.0.1, a real SQLite file in a temp dir, and ffprobe/ffmpeg checks of the
outputs. Standard library only."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SKIP = 77


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--source", required=True)
    return p.parse_args()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


class Cluster:
    """A coordinator plus any number of agents; everything is stopped (by the
    PIDs this object started) on close."""

    def __init__(self, build, extra_coord_args=()):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="rf-it-")
        self.http_port = free_port()
        self.nng_port = free_port()
        self.bucket_root = os.path.join(self.dir, "buckets")
        self.db = os.path.join(self.dir, "rf.db")
        self.procs = {}
        self.logs = {}
        self.start_coordinator(extra_coord_args)

    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, f"{name}.log"), "wb")
        self.logs[name] = log.name
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = p
        return p

    def start_coordinator(self, extra=()):
        argv = [os.path.join(self.build, "coordinator", "coordinator"),
                "--http-listen", f"127.0.0.1:{self.http_port}",
                "--nng-listen", f"tcp://127.0.0.1:{self.nng_port}",
                "--db-path", self.db, "--bucket-root", self.bucket_root,
                "--log-level", "info", *extra]
        self._spawn("coordinator", argv)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            check(self.procs["coordinator"].poll() is None,
                  "coordinator exited at start:\n" + self.log("coordinator"))
            time.sleep(0.05)
        raise Failure("coordinator did not answer /healthz in 15 s")

    def start_agent(self, name, *extra):
        argv = [os.path.join(self.build, "agent", "agent"),
                "--coordinator", f"tcp://127.0.0.1:{self.nng_port}",
                "--agent-id", name, *extra]
        return self._spawn(name, argv)

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)
        p.wait(timeout=30)

    def log(self, name):
        try:
            with open(self.logs[name], "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    def request(self, method, path, body=None, headers=None):
        url = f"http://127.0.0.1:{self.http_port}{path}"
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body, headers=None):
        return self.request("POST", path, body, headers)

    def wait_job(self, job_id, timeout=300, states=("completed", "failed", "canceled")):
        deadline = time.time() + timeout
        job = None
        while time.time() < deadline:
            code, job = self.get(f"/api/v1/bulk-jobs/{job_id}")
            check(code == 200, f"GET job: {code} {job}")
            if job["state"] in states:
                return job
            for name, p in self.procs.items():
                if name == "coordinator":
                    check(p.poll() is None, "coordinator died:\n" + self.log(name))
            time.sleep(0.25)
        raise Failure(f"job {job_id} not finished after {timeout} s: {job}")

    def videos(self, job_id):
        code, body = self.get(f"/api/v1/bulk-jobs/{job_id}/videos?page_size=100")
        check(code == 200, f"GET videos: {code} {body}")
        return body["videos"]

    def close(self, keep=False):
        for name, p in self.procs.items():
            if p.poll() is None:
                p.terminate()
        for name, p in self.procs.items():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def ffprobe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", path],
        capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, f"ffprobe {path}: {out.stderr}")
    return json.loads(out.stdout)


def decode_errors(path):
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-"],
                         capture_output=True, text=True, timeout=300)
    return (out.stderr or "").strip() if out.returncode == 0 else f"rc={out.returncode} {out.stderr}"


def write_csv(path, rows, header=True):
    import csv
    cols = ["idea_title", "description", "target_audience", "tone", "duration_seconds",
            "platform_preferences", "script_content", "voice_preference", "style_override",
            "priority"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        if header:
            w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c, "") for c in cols])


def run(main):
    """Runs main(args) and maps the outcome to ctest: 0 pass, 1 fail."""
    a = args()
    for tool in ("ffprobe", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"SKIP: {tool} is not installed")
            sys.exit(SKIP)
    try:
        main(a)
    except Failure as e:
        print(f"FAIL: {e}")
        sys.exit(1)
    print("PASS")
    sys.exit(0)
