"""rfctl, the command-line client, against a stub server (what it sends:
Idempotency-Key, retries, Authorization, both error shapes, exit codes of
watch) and against a real coordinator and agent (submit, watch on a pipe and
on a pseudo-terminal, show, videos, list, pause/resume/cancel/retry).

Parts that need API routes this coordinator does not serve yet (answers 404
or 405 for the route) are reported as SKIP lines with the reason; every other
part must pass."""
import http.server
import json
import os
import pty
import select
import socket
import subprocess
import threading
import time

from harness import Cluster, Failure, check, free_port, run, run_step, write_csv


GOOD_ROWS = [
    {"idea_title": "Quick tip one", "description": "Short", "duration_seconds": "2",
     "platform_preferences": "youtube", "script_content": "One short tip.",
     "voice_preference": "female", "style_override": "modern"},
    {"idea_title": "Quick tip two", "description": "Short", "duration_seconds": "3",
     "platform_preferences": "youtube", "script_content": "Another short tip.",
     "voice_preference": "male", "style_override": "classic"},
    {"idea_title": "Row without a script", "duration_seconds": "2",
     "platform_preferences": "youtube"},
    {"idea_title": "Quick tip three", "description": "Short", "duration_seconds": "4",
     "platform_preferences": "youtube", "script_content": "A third tip, still short.",
     "voice_preference": "neutral", "style_override": "minimal"},
]
BAD_ROWS = [{"idea_title": "No script here", "duration_seconds": "2"},
            {"idea_title": "Nor here", "duration_seconds": "3"}]


# ---- the coordinator's optional features, read from its --help ----

def coord_features(build):
    exe = os.path.join(build, "coordinator", "coordinator")
    out = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    text = out.stdout + out.stderr
    return {k: k in text for k in ("idempotency_ttl_s",)}




# ---- running rfctl ----

class Ctl:
    def __init__(self, build, url, token):
        self.exe = os.path.join(build, "coordinator", "rfctl", "rfctl")
        check(os.access(self.exe, os.X_OK), f"rfctl is not built at {self.exe}")
        self.url = url
        self.token = token

    def env(self, url=None, token=None):
        env = {k: v for k, v in os.environ.items() if k not in ("RF_URL", "RF_TOKEN")}
        env["RF_URL"] = url or self.url
        tok = token if token is not None else self.token
        if tok:
            env["RF_TOKEN"] = tok
        env.setdefault("LC_ALL", "C.UTF-8")
        return env

    def __call__(self, *argv, url=None, token=None, timeout=300):
        p = subprocess.run([self.exe, *argv], capture_output=True, text=True, timeout=timeout,
                           env=self.env(url, token))
        return p.returncode, p.stdout, p.stderr

    def on_pty(self, *argv, timeout=300):
        """Runs rfctl with stdout and stderr on a pseudo-terminal; returns
        (exit code, everything it wrote)."""
        master, slave = pty.openpty()
        env = self.env()
        env["TERM"] = "xterm"
        p = subprocess.Popen([self.exe, *argv], stdout=slave, stderr=slave, env=env)
        os.close(slave)
        out = b""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                r, _, _ = select.select([master], [], [], 1.0)
                if r:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the child closed the terminal
                        break
                    if not chunk:
                        break
                    out += chunk
                elif p.poll() is not None:
                    break
            # The terminal closes just before the process exits: give it the
            # rest of the time to be reaped.
            try:
                p.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                raise Failure(f"rfctl {' '.join(argv)} on a pty ran past {timeout} s")
        finally:
            os.close(master)
        return p.returncode, out.decode("utf-8", "replace")


# ---- a stub API server that records what it is sent ----

class Stub:
    """Answers from a script: each entry is (method, path-prefix, action)
    where action is "drop" (close the connection without answering) or
    (status, body, headers). Unscripted requests get 500."""

    def __init__(self):
        self.requests = []
        self.script = []
        self.lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n > 0 else b""
                with stub.lock:
                    stub.requests.append({"method": self.command, "path": self.path,
                                          "headers": {k.lower(): v for k, v in
                                                      self.headers.items()},
                                          "body": body})
                    action = None
                    for i, (m, prefix, act) in enumerate(stub.script):
                        if m == self.command and self.path.startswith(prefix):
                            action = act
                            del stub.script[i]
                            break
                if action == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if action is None:
                    action = (500, {"error_code": "internal_error",
                                    "error_message": "unscripted request"}, {})
                status, obj, headers = action
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("X-Correlation-Id", "stub-cid-1")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = handle_any
            do_POST = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, script):
        with self.lock:
            self.requests = []
            self.script = list(script)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def progress(state, pct, done, failed, pending, total):
    return {"job_id": "job_stub", "state": state, "percent_complete": pct,
            "items_status": {"total": total, "completed": done, "failed": failed,
                             "pending": pending, "skipped": 0},
            "timing": {"started_at": None, "processing_time_ms": 1000, "eta_ms": 2000},
            "rate_limited": False}


# ---- parts against the stub ----

def part_usage(ctl, tmp):
    csv_path = os.path.join(tmp, "u.csv")
    write_csv(csv_path, GOOD_ROWS[:1])
    cases = [
        [],
        ["frobnicate"],
        ["submit", csv_path],  # no --bucket
        ["submit", "--bucket", "b"],  # neither a file nor --sheet
        ["submit", csv_path, "--bucket", "b", "--priority", "urgent"],
        ["submit", csv_path, "--bucket", "b", "--deadline-min", "0"],
        ["submit", csv_path, "--bucket", "b", "--resolution", "8k"],
        ["submit", os.path.join(tmp, "missing.csv"), "--bucket", "b"],
        ["submit", "--sheet", "1A2B", "--bucket", "b"],  # --sheet without --range
        ["watch"],
        ["watch", "job_x", "--interval-ms", "fast"],
        ["show", "a", "b"],
        ["list", "--page-size", "0"],
        ["list", "--order", "sideways"],
        ["videos", "job_x", "--state", "exploded"],
        ["list", "--no-such-option"],
        ["--url", "ftp://example.org", "health"],
    ]
    for argv in cases:
        code, out, err = ctl(*argv, url="http://127.0.0.1:9")
        check(code == 2, f"rfctl {argv}: exit {code}, expected 2 (usage)\n{out}{err}")
        check(err.strip() != "", f"rfctl {argv}: no message on stderr")
    code, out, err = ctl("--help")
    check(code == 0 and "submit" in out and "watch" in out, f"--help: {code} {out}{err}")


def part_unreachable(ctl, tmp):
    dead = f"http://127.0.0.1:{free_port()}"
    t0 = time.time()
    code, out, err = ctl("health", url=dead)
    check(code == 4, f"health on a dead port: exit {code}, expected 4\n{err}")
    check("cannot reach" in err, f"unclear network error: {err}")
    # Default retries (3) with backoff from 0.5 s: bounded, not instant.
    check(1.0 <= time.time() - t0 <= 30, f"health took {time.time() - t0:.1f} s")
    csv_path = os.path.join(tmp, "n.csv")
    write_csv(csv_path, GOOD_ROWS[:1])
    for argv in (["--retries", "0", "show", "job_x"], ["--retries", "0", "watch", "job_x"],
                 ["--retries", "1", "submit", csv_path, "--bucket", "b"]):
        code, out, err = ctl(*argv, url=dead)
        check(code == 4, f"rfctl {argv} on a dead port: exit {code}, expected 4\n{err}")


def part_stub_submit(ctl, stub, tmp):
    """A lost answer and a 503 are retried with the same Idempotency-Key and
    the same body; the third attempt's job id is printed."""
    csv_path = os.path.join(tmp, "s.csv")
    write_csv(csv_path, GOOD_ROWS)
    created = {"id": "job_stub_1", "state": "pending", "items_total": 4}
    stub.reset([("POST", "/api/v1/bulk-jobs", "drop"),
                ("POST", "/api/v1/bulk-jobs",
                 (503, {"error_code": "service_unavailable", "error_message": "busy"},
                  {"Retry-After": "0"})),
                ("POST", "/api/v1/bulk-jobs", (201, created, {}))])
    rel = os.path.relpath(csv_path)
    code, out, err = ctl("--token", "tok-123", "submit", rel, "--bucket", "my-bucket",
                         "--title", "Stub job", "--priority", "high", "--resolution", "720p",
                         "--format", "webm", "--template", "tpl_promotional", "--style", "modern",
                         "--voice", "female", "--deadline-min", "90",
                         url=f"http://127.0.0.1:{stub.port}/api/v1/")
    check(code == 0, f"submit through a lost answer and a 503: exit {code}\n{out}{err}")
    check(out.strip() == "job_stub_1", f"stdout should be the job id alone: {out!r}")
    reqs = stub.requests
    check(len(reqs) == 3, f"expected 3 attempts, the stub saw {len(reqs)}")
    keys = {r["headers"].get("idempotency-key") for r in reqs}
    check(len(keys) == 1 and None not in keys, f"Idempotency-Key differs or is missing: {keys}")
    key = keys.pop()
    check(key.startswith("rfctl_") and len(key) > 12, f"generated key looks wrong: {key}")
    check(len({r["body"] for r in reqs}) == 1, "the retried bodies differ")
    for r in reqs:
        check(r["path"] == "/api/v1/bulk-jobs", f"path {r['path']}")
        check(r["headers"].get("authorization") == "Bearer tok-123",
              f"Authorization: {r['headers'].get('authorization')}")
        check(r["headers"].get("content-type") == "application/json", "content type")
    body = json.loads(reqs[0]["body"])
    want = {"title": "Stub job", "priority": "high", "processing_deadline_ms": 90 * 60000,
            "input_source": {"type": "csv", "path": os.path.realpath(csv_path)},
            "output": {"output_bucket": "my-bucket", "format": "webm", "video_codec": "vp9",
                       "audio_codec": "opus", "resolution": "720p"},
            "template": {"template_id": "tpl_promotional",
                         "overrides": {"style": "modern", "voice": "female"}}}
    check(body == want, f"request body:\n{body}\nexpected:\n{want}")
    check(key in err, "the idempotency key is not shown to the user")

    # An explicit key is sent as given; a sheet source has its own shape.
    stub.reset([("POST", "/api/v1/bulk-jobs", (201, created, {}))])
    code, out, err = ctl("submit", "--sheet", "1A2B3C4D5E6F7G8H9I0J", "--range", "A1:J50",
                         "--bucket", "b", "--idempotency-key", "my-key-42", "--json",
                         url=f"http://127.0.0.1:{stub.port}", token="")
    check(code == 0, f"sheet submit: {code} {err}")
    check(json.loads(out)["id"] == "job_stub_1", f"--json output: {out}")
    r = stub.requests[0]
    check(r["headers"].get("idempotency-key") == "my-key-42", "explicit key not sent")
    check("authorization" not in r["headers"], "Authorization sent without a token")
    body = json.loads(r["body"])
    check(body["input_source"] == {"type": "sheet", "sheet_id": "1A2B3C4D5E6F7G8H9I0J",
                                   "range": "A1:J50"}, f"sheet input_source: {body}")

    # A validation error is not retried, and is printed with its detail.
    stub.reset([("POST", "/api/v1/bulk-jobs",
                 (400, {"error_code": "validation_error",
                        "error_message": "output.output_bucket is required",
                        "detail": {"field": "output.output_bucket", "reason": "required"}}, {}))])
    code, out, err = ctl("submit", csv_path, "--bucket", "b", url=f"http://127.0.0.1:{stub.port}")
    check(code == 1, f"400: exit {code}, expected 1")
    check(len(stub.requests) == 1, f"a 400 was retried ({len(stub.requests)} attempts)")
    for s in ("validation_error", "output.output_bucket is required", "\"reason\":\"required\"",
              "stub-cid-1"):
        check(s in err, f"stderr lacks {s!r}: {err}")


def part_stub_actions(ctl, stub):
    """A plain POST (pause) is not repeated after a lost answer, but is after
    a 429; the wrapped error shape is read like the flat one."""
    base = f"http://127.0.0.1:{stub.port}"
    stub.reset([("POST", "/api/v1/bulk-jobs/job_a/pause", "drop")])
    code, out, err = ctl("pause", "job_a", url=base)
    check(code == 4, f"pause with a lost answer: exit {code}, expected 4\n{err}")
    check(len(stub.requests) == 1, f"pause was repeated: {len(stub.requests)} attempts")

    stub.reset([("POST", "/api/v1/bulk-jobs/job_a/pause",
                 (429, {"error_code": "rate_limited", "error_message": "slow down"},
                  {"Retry-After": "0"})),
                ("POST", "/api/v1/bulk-jobs/job_a/pause",
                 (200, {"id": "job_a", "state": "pausing"}, {}))])
    code, out, err = ctl("pause", "job_a", url=base)
    check(code == 0 and "pausing" in out, f"pause after a 429: {code} {out} {err}")
    check(len(stub.requests) == 2, f"429 not retried once: {len(stub.requests)}")

    stub.reset([("POST", "/api/v1/bulk-jobs/job_a/resume",
                 (409, {"success": False,
                        "error": {"code": "invalid_state",
                                  "message": "cannot resume job job_a: it is running",
                                  "detail": {"state": "running"}}}, {}))])
    code, out, err = ctl("resume", "job_a", url=base)
    check(code == 1, f"409: exit {code}")
    check("invalid_state" in err and "it is running" in err and "409" in err,
          f"wrapped error shape not printed: {err}")

    # Odd characters in a job id are escaped into one path segment.
    stub.reset([("GET", "/api/v1/bulk-jobs/a%2Fb%20c", (404, {"error_code": "not_found",
                                                               "error_message": "nope"}, {}))])
    code, out, err = ctl("show", "a/b c", url=base)
    check(code == 1 and "not_found" in err, f"show odd id: {code} {err}")
    check(stub.requests[0]["path"] == "/api/v1/bulk-jobs/a%2Fb%20c",
          f"path {stub.requests[0]['path']}")


def part_stub_watch(ctl, stub):
    base = f"http://127.0.0.1:{stub.port}"
    videos = {"videos": [{"id": "itm_1", "row_number": 2, "title": "Doomed", "state": "failed",
                          "errors": [{"error_code": "template_render_error",
                                      "error_message": "the template broke"}],
                          "artifacts": [], "renditions": []}], "next_page_token": None}
    stub.reset([("GET", "/api/v1/bulk-jobs/job_c/progress",
                 (200, progress("running", 10.0, 0, 0, 1, 1), {})),
                ("GET", "/api/v1/bulk-jobs/job_c/progress",
                 (200, progress("canceled", 100.0, 0, 1, 0, 1), {})),
                ("GET", "/api/v1/bulk-jobs/job_c/videos", (200, videos, {})),
                ("GET", "/api/v1/bulk-jobs/job_c/videos", (200, videos, {})),
                ("GET", "/api/v1/bulk-jobs/job_c",
                 (200, {"id": "job_c", "state": "canceled", "error_code": "canceled",
                        "error_message": "canceled by the user"}, {}))])
    code, out, err = ctl("watch", "job_c", "--interval-ms", "100", url=base)
    check(code == 3, f"watch of a canceled job: exit {code}, expected 3\n{out}{err}")
    check("canceled" in out and "canceled by the user" in out, f"watch output: {out}")
    check("template_render_error: the template broke" in out, f"item error not shown: {out}")

    running = (200, progress("running", 10.0, 0, 0, 1, 1), {})
    empty = (200, {"videos": [], "next_page_token": None}, {})
    stub.reset([("GET", "/api/v1/bulk-jobs/job_d/progress", running)] * 40 +
               [("GET", "/api/v1/bulk-jobs/job_d/videos", empty)] * 40)
    t0 = time.time()
    code, out, err = ctl("watch", "job_d", "--interval-ms", "100", "--timeout", "1", url=base)
    check(code == 5, f"watch --timeout: exit {code}, expected 5\n{err}")
    check(time.time() - t0 < 10, "watch --timeout overran")


# ---- parts against the real coordinator ----

class Live:
    def __init__(self, c, ctl, token):
        self.c = c
        self.ctl = ctl
        self.hdrs = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path):
        return self.c.request("GET", path, None, self.hdrs)

    def post(self, path, body=None):
        return self.c.request("POST", path, body if body is not None else b"", self.hdrs)

    def job(self, job_id):
        code, job = self.get(f"/api/v1/bulk-jobs/{job_id}")
        check(code == 200, f"GET job {job_id}: {code} {job}")
        return job

    def wait_state(self, job_id, states, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.job(job_id)
            if job["state"] in states:
                return job
            time.sleep(0.05)
        raise Failure(f"job {job_id} never reached {states}: {self.job(job_id)}")


def part_live_submit_watch(live, tmp):
    ctl = live.ctl
    code, out, err = ctl("health")
    check(code == 0 and out.strip() == "ok", f"health: {code} {out} {err}")

    csv_path = os.path.join(tmp, "good.csv")
    write_csv(csv_path, GOOD_ROWS)
    code, out, err = ctl("submit", csv_path, "--bucket", "cli-bucket", "--resolution", "720p",
                         "--title", "rfctl watch test", "--watch", "--interval-ms", "150")
    check(code == 0, f"submit --watch: exit {code}\n{out}\n{err}")
    lines = out.splitlines()
    job_id = lines[0].strip()
    check(job_id.startswith("job_"), f"first line should be the job id: {lines[:2]}")
    check(any("%" in ln and job_id in ln for ln in lines), f"no progress lines:\n{out}")
    check("\x1b[" not in out, "escape sequences on a pipe")
    check(f"job {job_id} completed: 3 completed, 1 failed" in out, f"no summary:\n{out}")
    for row in (2, 3, 5):
        check(f"done  row {row}" in out, f"no per-item line for row {row}:\n{out}")
    check("FAIL  row 4" in out and "script_content" in out, f"row 4 failure not shown:\n{out}")

    job = live.job(job_id)
    check(job["state"] == "completed" and job["items_completed"] == 3, f"job: {job}")
    check(job["output"]["resolution"] == "720p" and job["title"] == "rfctl watch test",
          f"request not as given: {job}")

    code, out, err = ctl("show", job_id)
    check(code == 0 and "completed" in out and "720p" in out and job_id in out,
          f"show: {code} {out} {err}")
    code, out, err = ctl("--json", "show", job_id)
    check(code == 0 and json.loads(out)["id"] == job_id, f"show --json: {code} {out}")
    code, out, err = ctl("videos", job_id)
    # Each video lists its poster ("thumbnail") and captions as artifacts too.
    check(code == 0 and out.count(" video youtube file://") == 3
          and out.count(" thumbnail youtube file://") == 3
          and out.count(" captions youtube file://") == 3 and "script_content" in out,
          f"videos: {code}\n{out}{err}")
    code, out, err = ctl("--json", "videos", job_id, "--state", "failed", "--page-size", "1")
    vids = json.loads(out)["videos"]
    check(code == 0 and [v["row_number"] for v in vids] == [4], f"videos --state failed: {out}")

    # The live bar on a terminal: redrawn in place, ends at 100 %.
    write_csv(csv_path, GOOD_ROWS[:2])
    code, out, err = ctl("submit", csv_path, "--bucket", "cli-bucket", "--resolution", "720p")
    check(code == 0, f"submit: {code} {err}")
    tty_job = out.strip()
    code, screen = ctl.on_pty("watch", tty_job, "--interval-ms", "100")
    check(code == 0, f"watch on a pty: exit {code}\n{screen}")
    check("\x1b[" in screen, f"no redraw on a terminal:\n{screen!r}")
    check("100.0%" in screen and "completed" in screen, f"no final bar:\n{screen!r}")
    check("\u2588" in screen or "#" in screen, "no progress bar glyphs")
    return job_id


def part_live_failures(live, tmp):
    ctl = live.ctl
    csv_path = os.path.join(tmp, "bad.csv")
    write_csv(csv_path, BAD_ROWS)
    code, out, err = ctl("submit", csv_path, "--bucket", "cli-bucket", "--resolution", "720p")
    check(code == 0, f"submit bad rows: {code} {err}")
    bad_job = out.strip()
    code, out, err = ctl("watch", bad_job, "--interval-ms", "100")
    check(code == 3, f"watch of a failed job: exit {code}, expected 3\n{out}{err}")
    check(f"job {bad_job} failed" in out and "script_content" in out, f"watch output:\n{out}")

    code, out, err = ctl("submit", csv_path, "--bucket", "cli-bucket", "--format", "webm",
                         "--video-codec", "h264")
    check(code == 1, f"webm + h264: exit {code}, expected 1")
    check("validation_error" in err and "output.video_codec" in err, f"stderr: {err}")
    code, out, err = ctl("show", "job_does_not_exist")
    check(code == 1 and "not_found" in err, f"show unknown job: {code} {err}")
    code, out, err = ctl("watch", "job_does_not_exist")
    check(code == 1 and "not_found" in err, f"watch unknown job: {code} {err}")
    return bad_job


def part_live_idempotency(live, tmp, feat):
    ctl = live.ctl
    csv_path = os.path.join(tmp, "idem.csv")
    write_csv(csv_path, BAD_ROWS[:1])
    key = f"rfctl-test-{time.time_ns()}"
    code1, out1, err1 = ctl("submit", csv_path, "--bucket", "idem", "--idempotency-key", key)
    code2, out2, err2 = ctl("submit", csv_path, "--bucket", "idem", "--idempotency-key", key)
    check(code1 == 0 and code2 == 0, f"submits: {code1} {err1} / {code2} {err2}")
    if not feat["idempotency_ttl_s"]:
        return ("SKIP", "the coordinator has no Idempotency-Key support yet (no "
                        "idempotency_ttl_s setting); the key is checked against the stub only")
    check(out1.strip() == out2.strip(), f"same key made two jobs: {out1} / {out2}")
    code, out, err = ctl("submit", csv_path, "--bucket", "other", "--idempotency-key", key)
    check(code == 1 and "idempotency_conflict" in err, f"same key, other body: {code} {err}")
    return None


def route_missing(code):
    return code in (404, 405)


def part_live_list(live, job_ids):
    code, body = live.get("/api/v1/bulk-jobs?page_size=1")
    if route_missing(code):
        return ("SKIP", f"GET /api/v1/bulk-jobs answers {code}: list is not served yet")
    ctl = live.ctl
    code, out, err = ctl("--json", "list", "--all", "--page-size", "1", "--sort", "created_at",
                         "--order", "asc")
    check(code == 0, f"list --all: {code} {err}")
    jobs = json.loads(out)["jobs"]
    ids = [j["id"] for j in jobs]
    check(len(ids) == len(set(ids)), f"list --all repeated jobs: {ids}")
    for j in job_ids:
        check(j in ids, f"list --all lacks {j}: {ids}")
    created = [j["created_at"] for j in jobs]
    check(created == sorted(created), f"not in created_at order: {created}")
    code, out, err = ctl("--json", "list", "--state", "failed")
    check(code == 0, f"list --state failed: {code} {err}")
    states = {j["state"] for j in json.loads(out)["jobs"]}
    check(states <= {"failed"}, f"--state failed listed {states}")
    code, out, err = ctl("list", "--page-size", "100")
    check(code == 0 and all(j in out for j in job_ids) and "STATE" in out, f"list table: {out}")
    return None


def part_live_actions(live, tmp, bad_job):
    ctl = live.ctl
    code, _ = live.post(f"/api/v1/bulk-jobs/{bad_job}/pause")
    if route_missing(code):
        return ("SKIP", f"POST /api/v1/bulk-jobs/{{id}}/pause answers {code}: the job actions "
                        "are not served yet")
    check(code == 409, f"pausing a failed job should be refused: {code}")

    # A job long enough to be caught running: six 30-second rows, one agent.
    script = "This line keeps the narrator talking for a while so the job stays busy."
    rows = [{"idea_title": f"Long row {i}", "duration_seconds": "30",
             "platform_preferences": "youtube", "script_content": script} for i in range(6)]
    csv_path = os.path.join(tmp, "long.csv")
    write_csv(csv_path, rows)
    code, out, err = ctl("submit", csv_path, "--bucket", "long", "--resolution", "720p")
    check(code == 0, f"submit long job: {code} {err}")
    job = out.strip()
    live.wait_state(job, ("running",), timeout=120)
    code, out, err = ctl("pause", job)
    check(code == 0 and ("pausing" in out or "paused" in out), f"pause: {code} {out} {err}")
    live.wait_state(job, ("paused",), timeout=180)
    code, out, err = ctl("pause", job)
    check(code == 1 and "409" in err and "paused" in err, f"second pause: {code} {err}")
    code, out, err = ctl("resume", job)
    check(code == 0 and ("running" in out or "pending" in out), f"resume: {code} {out} {err}")
    code, out, err = ctl("cancel", job)
    check(code == 0 and ("canceling" in out or "canceled" in out), f"cancel: {code} {out} {err}")
    code, out, err = ctl("watch", job, "--interval-ms", "100")
    check(code == 3 and f"job {job} canceled" in out, f"watch canceled: {code}\n{out}{err}")
    code, out, err = ctl("retry", job)
    check(code == 1 and "409" in err, f"retry of a canceled job: {code} {err}")

    # Rows that failed validation fail the same way again: nothing to retry.
    code, out, err = ctl("retry", bad_job)
    check(code == 1 and "409" in err, f"retry of a job of bad rows: {code} {out} {err}")
    return None


def part_live_retry(build, ctl_for):
    """A unit whose agent dies fails (one attempt allowed, short leases), so
    the job fails; `rfctl retry` puts it back and a new agent finishes it."""
    c = Cluster(build, ["--lease-ttl-ms", "1500", "--reaper-interval-ms", "200",
                        "--max-attempts", "1"])
    ok = False
    try:
        token = getattr(c, "token", None)
        ctl = ctl_for(c, token)
        live = Live(c, ctl, token)
        csv_path = os.path.join(c.dir, "one.csv")
        script = "This sentence keeps the narrator busy for a little while."
        write_csv(csv_path, [{"idea_title": "Survives a dead agent", "duration_seconds": "20",
                              "platform_preferences": "youtube", "script_content": script}])
        code, out, err = ctl("submit", csv_path, "--bucket", "retry", "--resolution", "720p")
        check(code == 0, f"submit: {code} {err}")
        job = out.strip()
        # Pending: a retry is refused (409) where the route exists.
        code, _ = live.post(f"/api/v1/bulk-jobs/{job}/retry")
        if route_missing(code):
            return ("SKIP", f"POST /api/v1/bulk-jobs/{{id}}/retry answers {code}: the job "
                            "actions are not served yet")
        check(code == 409, f"retry of a pending job: {code}")
        c.start_agent("doomed")
        deadline = time.time() + 120
        while True:
            check(time.time() < deadline, "the agent never reported frames")
            code, body = live.get(f"/api/v1/bulk-jobs/{job}/videos")
            r = body["videos"][0]["renditions"][0] if code == 200 else {}
            if r.get("frames_done", 0) > 0:
                break
            time.sleep(0.05)
        c.kill("doomed")
        failed = live.wait_state(job, ("failed",), timeout=60)
        check(failed["items_failed"] == 1, f"after the agent died: {failed}")
        code, out, err = ctl("watch", job)
        check(code == 3 and "failed" in out, f"watch of the failed job: {code}\n{out}{err}")
        c.start_agent("rescuer")
        code, out, err = ctl("retry", job)
        check(code == 0 and job in out, f"retry: {code} {out} {err}")
        code, out, err = ctl("watch", job, "--interval-ms", "200")
        check(code == 0 and f"job {job} completed: 1 completed, 0 failed" in out,
              f"watch after retry: {code}\n{out}{err}")
        ok = True
    finally:
        if not ok:
            print("--- retry cluster: coordinator log ---\n" + c.log("coordinator"))
        c.close()
    return None


def main(a):
    feat = coord_features(a.build)
    stub = Stub()
    c = Cluster(a.build)
    # The harness runs the coordinator with a fresh JWT secret and gives us
    # a token with every scope; rfctl sends it from $RF_TOKEN.
    token = getattr(c, "token", None)
    ctl = Ctl(a.build, f"http://127.0.0.1:{c.http_port}", token)
    live = Live(c, ctl, token)
    results = []
    ok = False
    try:
        tmp = c.dir

        def step(name, fn, *args, needed=False):
            return run_step(results, name, fn, *args, needed=needed)

        step("usage errors exit 2", part_usage, ctl, tmp)
        step("unreachable coordinator exits 4", part_unreachable, ctl, tmp)
        step("stub: submit retries with one Idempotency-Key", part_stub_submit, ctl, stub, tmp)
        step("stub: action retries and error shapes", part_stub_actions, ctl, stub)
        step("stub: watch exit codes 3 and 5", part_stub_watch, ctl, stub)
        c.start_agent("agent-1")
        ids = {}

        def live_good():
            ids["good"] = part_live_submit_watch(live, tmp)

        def live_bad():
            ids["bad"] = part_live_failures(live, tmp)

        step("live: submit --watch, show, videos, tty bar", live_good, needed=True)
        step("live: failed job exits 3, API errors exit 1", live_bad, needed=True)
        step("live: idempotency key replay and conflict", part_live_idempotency, live, tmp, feat)
        step("live: list", part_live_list, live, [ids["good"], ids["bad"]])
        step("live: pause/resume/cancel/retry", part_live_actions, live, tmp, ids["bad"])
        step("live: retry after a dead agent", part_live_retry, a.build,
             lambda cl, tok: Ctl(a.build, f"http://127.0.0.1:{cl.http_port}", tok))
        skipped = [n for n, r in results if r == "skip"]
        if skipped:
            print(f"{len(skipped)} part(s) skipped: {', '.join(skipped)}")
        failed = [n for n, r in results if r == "fail"]
        check(not failed, f"{len(failed)} part(s) failed: {', '.join(failed)}")
        ok = True
    finally:
        stub.close()
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
            if "agent-1" in c.logs:
                print("--- agent log ---\n" + c.log("agent-1"))
        c.close()


run(main)
