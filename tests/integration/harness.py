"""Helpers for integration tests: real coordinator and agent processes on
127.0.0.1, a real SQLite file in a temp dir, and ffprobe/ffmpeg checks of the
outputs. Standard library only.

Every Cluster starts its coordinator with a fresh HS256 secret (Cluster.secret)
and sends Cluster.token (tenant "default", user "it-user", every scope) as a
Bearer token on every request unless told otherwise; mint() makes other
tokens, good or deliberately bad. Rate limits are raised to 100000/min so that
polling tests are not throttled; tests of the limits pass their own."""
import argparse
import base64
import hashlib
import hmac
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
ALL_SCOPES = "jobs:read jobs:write sheets:connect templates:write"
_DEFAULT = object()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret, sub="it-user", tenant="default", scope=ALL_SCOPES, ttl=3600, now=None,
         alg="HS256", header=None, extra=None, drop=(), sign_with=None):
    """An HS256 JWT made by hand (so that tests can also make bad ones):
    header/claims overrides, drop=("exp",) removes claims, alg="none" leaves
    the signature empty, sign_with signs with another secret."""
    now = int(time.time()) if now is None else now
    head = header if header is not None else {"alg": alg, "typ": "JWT"}
    claims = {"sub": sub, "tenant": tenant, "scope": scope, "iat": now, "nbf": now,
              "exp": now + ttl}
    claims.update(extra or {})
    for k in drop:
        claims.pop(k, None)
    signing = b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return signing + "."
    key = (sign_with if sign_with is not None else secret).encode()
    return signing + "." + b64url(hmac.new(key, signing.encode(), hashlib.sha256).digest())


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
        self.secret = "it-" + os.urandom(24).hex()
        self.token = mint(self.secret)
        self.last_headers = {}
        self.http_port = free_port()
        self.nng_port = free_port()
        self.bucket_root = os.path.join(self.dir, "buckets")
        self.db = os.path.join(self.dir, "rf.db")
        self.procs = {}
        self.logs = {}
        self.extra = list(extra_coord_args)
        self.start_coordinator()

    def _spawn(self, name, argv):
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        self.logs[name] = log.name
        env = dict(os.environ)
        # In a sanitizer build: the libraries' own process-lifetime
        # allocations are not leaks of ours (see the file).
        env.setdefault("LSAN_OPTIONS", "suppressions=" + os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "agent", "lsan.supp"))
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[name] = p
        return p

    def start_coordinator(self, extra=None):
        """Starts (or restarts, after kill) the coordinator on the same ports
        and database, with the cluster's arguments unless extra is given."""
        extra = self.extra if extra is None else extra
        argv = [os.path.join(self.build, "coordinator", "coordinator"),
                "--http-listen", f"127.0.0.1:{self.http_port}",
                "--nng-listen", f"tcp://127.0.0.1:{self.nng_port}",
                "--db-path", self.db, "--bucket-root", self.bucket_root,
                "--log-level", "info", "--jwt-secret", self.secret,
                "--rate-user-per-min", "100000", "--rate-project-per-min", "100000", *extra]
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

    def signal(self, name, sig):
        """Sends sig to a process this cluster started (SIGSTOP/SIGCONT...)
        without waiting for it."""
        p = self.procs[name]
        if p.poll() is None:
            p.send_signal(sig)

    def log(self, name):
        try:
            with open(self.logs[name], "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    def mint(self, **kw):
        """A token signed with this coordinator's secret (see mint())."""
        return mint(self.secret, **kw)

    def request(self, method, path, body=None, headers=None, token=_DEFAULT):
        """(status, parsed JSON body); the response headers are left in
        self.last_headers (lowercase names). token=None sends none."""
        url = f"http://127.0.0.1:{self.http_port}{path}"
        data = None
        hdrs = dict(headers or {})
        token = self.token if token is _DEFAULT else token
        if token is not None and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {token}"
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                self.last_headers = {k.lower(): v for k, v in r.headers.items()}
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            self.last_headers = {k.lower(): v for k, v in e.headers.items()}
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def get(self, path, token=_DEFAULT, headers=None):
        return self.request("GET", path, headers=headers, token=token)

    def post(self, path, body, headers=None, token=_DEFAULT):
        return self.request("POST", path, body, headers, token=token)

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
        # A sanitizer build's processes report memory errors and leaks in
        # their logs, not in the test's outcome: make them count.
        reports = []
        for name, path in self.logs.items():
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                i = text.find(marker)
                if i >= 0:
                    reports.append(f"{name}: {text[i:i + 3000]}")
        if not keep and not reports:
            shutil.rmtree(self.dir, ignore_errors=True)
        if reports:
            raise Failure(f"sanitizer reports (logs kept in {self.dir}):\n" + "\n".join(reports))


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


def run_step(results, name, fn, *args, needed=False):
    """Runs one part of a many-part test; a failure is reported and the next
    part runs, unless later parts need this one's result (needed=True). A
    part that returns ("SKIP", reason) is reported as skipped."""
    t0 = time.time()
    try:
        res = fn(*args)
    except Exception as e:  # noqa: BLE001 (the seeds' code raises anything)
        print(f"FAIL {name}: {e!r}" if not isinstance(e, Failure) else f"FAIL {name}: {e}")
        results.append((name, "fail"))
        if needed:
            raise
        return None
    if isinstance(res, tuple) and res and res[0] == "SKIP":
        print(f"SKIP {name}: {res[1]}")
        results.append((name, "skip"))
        return None
    print(f"ok   {name} ({time.time() - t0:.1f} s)")
    results.append((name, "ok"))
    return res


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
