"""WebSocket feed against real clients (Debian's python3-websocket, and the
seeds' JavaScript client on Node's `ws` when installed): message order and
types for a whole job with a failed row, two clients at once, late join,
coalescing, heartbeats, a client that never reads, and refusals (wrong
tenant, bad token, missing scope, missing job_id)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (argument parsing shared with the other tests)
from live_helpers import (SKIP, Failure, TestServer, check, import_websocket,  # noqa: E402
                          raw_ws_handshake, wait_for)

websocket = import_websocket()

ACME = {"Authorization": "Bearer tok-acme"}


def connect(srv, path, headers, timeout=5):
    ws = websocket.create_connection(srv.ws_url(path), header=headers, timeout=timeout)
    return ws


def recv(ws, timeout=5):
    ws.settimeout(timeout)
    return json.loads(ws.recv())


def recv_n(ws, n, timeout=5):
    return [recv(ws, timeout) for _ in range(n)]


def no_message(ws, wait):
    ws.settimeout(wait)
    try:
        m = ws.recv()
    except websocket.WebSocketTimeoutException:
        return True
    raise Failure(f"unexpected message: {m}")


def publish(srv, job, msg):
    st, body = srv.call("POST", "/ctl/publish", {"job_id": job, "msg": msg})
    check(st == 200, f"publish failed: {st} {body}")
    return body


def scripted_job(job):
    """A whole job: three rows, the second fails."""
    return [
        {"type": "job.state_changed", "data": {"job_id": job, "prior_state": "pending",
                                               "new_state": "running", "reason": "dispatched"}},
        {"type": "job.progress", "data": {"job_id": job, "percent_complete": 10.0,
                                          "items_completed": 0, "items_total": 3,
                                          "eta_ms": None, "rate_limited": False}},
        {"type": "video.completed", "data": {"job_id": job, "id": "item_1", "row_number": 2,
                                             "artifacts": [{"type": "video",
                                                            "url": "file:///out/1.mp4"}]}},
        {"type": "job.progress", "data": {"job_id": job, "percent_complete": 40.0,
                                          "items_completed": 1, "items_total": 3,
                                          "eta_ms": 20000, "rate_limited": True}},
        {"type": "video.failed", "data": {"job_id": job, "id": "item_2", "row_number": 3,
                                          "errors": [{"error_code": "template_render_error",
                                                      "error_message": "unknown style"}]}},
        {"type": "video.completed", "data": {"job_id": job, "id": "item_3", "row_number": 4,
                                             "artifacts": [{"type": "video",
                                                            "url": "file:///out/3.mp4"}]}},
        {"type": "job.progress", "data": {"job_id": job, "percent_complete": 100.0,
                                          "items_completed": 2, "items_total": 3,
                                          "eta_ms": 0, "rate_limited": False}},
        {"type": "job.state_changed", "data": {"job_id": job, "prior_state": "running",
                                               "new_state": "completed",
                                               "reason": "all items finished"}},
        {"type": "job.completed", "data": {"job_id": job, "summary": {
            "items_total": 3, "items_completed": 2, "items_failed": 1},
            "artifacts": [{"type": "video", "url": "file:///out/1.mp4"}]}},
    ]


def test_whole_job_two_clients_late_join(srv):
    job = "job_order"
    check(srv.call("POST", "/ctl/jobs", {"job_id": job, "tenant": "acme"})[0] == 201, "create")
    # Two clients on two path styles, the seeds' two ways of sending the token.
    a = connect(srv, f"/api/v1/ws/bulk-jobs?job_id={job}", ACME)
    b = connect(srv, f"/ws/bulk-jobs?job_id={job}",
                {"Sec-WebSocket-Protocol": "Bearer tok-acme"})
    check(b.getheaders().get("sec-websocket-protocol") is None,
          "a subprotocol was answered that the client did not request")
    for c in (a, b):
        first = recv(c)
        check(first["type"] == "job.state_changed" and first["data"]["new_state"] == "pending",
              f"first message is the current state: {first}")
    script = scripted_job(job)
    for m in script:
        publish(srv, job, m)
    for name, c in (("A", a), ("B", b)):
        got = recv_n(c, len(script))
        check([m["type"] for m in got] == [m["type"] for m in script],
              f"client {name}: order/types {[m['type'] for m in got]}")
        check(got == script, f"client {name}: content differs: {got}")
        # Exactly what the seeds' handlers read.
        check(got[4]["data"]["errors"][0]["error_code"] == "template_render_error", "failed row")
        check(got[3]["data"]["rate_limited"] is True and got[3]["data"]["eta_ms"] == 20000,
              "progress fields")
    a.close()
    b.close()

    # Late join (third path style): the current state comes first.
    c = connect(srv, f"/api/ws/bulk-jobs?job_id={job}", ACME)
    got = recv_n(c, 3)
    check(got[0]["type"] == "job.state_changed" and got[0]["data"]["new_state"] == "completed"
          and got[0]["data"]["prior_state"] == "running", f"late join state: {got[0]}")
    check(got[1]["type"] == "job.progress" and got[1]["data"]["percent_complete"] == 100.0,
          f"late join progress: {got[1]}")
    check(got[2]["type"] == "job.completed", f"late join final: {got[2]}")
    no_message(c, 0.5)
    c.close()
    print("ok: whole job, two clients, late join")


def test_refusals(srv):
    job = "job_private"
    srv.call("POST", "/ctl/jobs", {"job_id": job, "tenant": "acme"})
    cases = [
        (f"/ws/bulk-jobs?job_id={job}", {"Authorization": "Bearer tok-globex"}, 404),
        (f"/ws/bulk-jobs?job_id={job}", {"Sec-WebSocket-Protocol": "Bearer tok-globex"}, 404),
        (f"/ws/bulk-jobs?job_id={job}", {"Authorization": "Bearer forged"}, 401),
        (f"/ws/bulk-jobs?job_id={job}", {}, 401),
        (f"/ws/bulk-jobs?job_id={job}", {"Authorization": "Bearer tok-noscope"}, 403),
        ("/ws/bulk-jobs?job_id=job_missing", ACME, 404),
        ("/ws/bulk-jobs", ACME, 400),
        ("/ws/bulk-jobs?job_id=../../etc", ACME, 400),
    ]
    for path, headers, want in cases:
        try:
            ws = connect(srv, path, headers)
            ws.close()
            raise Failure(f"{path} {headers}: connected, expected {want}")
        except websocket.WebSocketBadStatusException as e:
            check(e.status_code == want, f"{path} {headers}: got {e.status_code}, want {want}")
    # The other tenant's client never sees acme's events, the operator does.
    op = connect(srv, f"/ws/bulk-jobs?job_id={job}", {"Authorization": "Bearer tok-op"})
    check(recv(op)["type"] == "job.state_changed", "operator snapshot")
    publish(srv, job, {"type": "job.failed", "data": {"job_id": job, "error_code": "x",
                                                      "error_message": "y"}})
    check(recv(op)["type"] == "job.failed", "operator sees the event")
    op.close()
    print("ok: refusals")


def test_coalescing(srv):
    job = "job_fast"
    srv.call("POST", "/ctl/jobs", {"job_id": job, "tenant": "acme"})
    c = connect(srv, f"/ws/bulk-jobs?job_id={job}", ACME)
    recv(c)
    before = srv.call("GET", "/ctl/stats")[1]["progress_merged"]
    t0 = time.time()
    for i in range(100):  # ~100 updates per second
        publish(srv, job, {"type": "job.progress",
                           "data": {"job_id": job, "percent_complete": float(i),
                                    "items_completed": i, "items_total": 100,
                                    "eta_ms": None, "rate_limited": False}})
        time.sleep(max(0.0, t0 + (i + 1) * 0.01 - time.time()))
    span = time.time() - t0
    got = []
    c.settimeout(2.0)
    try:
        while True:
            got.append(json.loads(c.recv()))
    except websocket.WebSocketTimeoutException:
        pass
    pcts = [m["data"]["percent_complete"] for m in got if m["type"] == "job.progress"]
    check(pcts and pcts[-1] == 99.0, f"the newest progress arrives: {pcts}")
    check(pcts == sorted(pcts), f"progress never goes back: {pcts}")
    # At most one per 250 ms (+1 for the first, +1 for the final flush).
    check(len(pcts) <= int(span / 0.25) + 2, f"{len(pcts)} messages in {span:.2f}s: {pcts}")
    merged = srv.call("GET", "/ctl/stats")[1]["progress_merged"] - before
    check(merged >= 100 - len(pcts), f"merged {merged}")
    c.close()
    print(f"ok: coalescing ({len(pcts)} of 100 progress messages in {span:.2f}s)")


def test_slow_client(srv):
    job = "job_burst"
    srv.call("POST", "/ctl/jobs", {"job_id": job, "tenant": "acme"})
    slow = raw_ws_handshake(srv.port, f"/ws/bulk-jobs?job_id={job}", ACME, rcvbuf=4096)
    fast = connect(srv, f"/api/v1/ws/bulk-jobs?job_id={job}", ACME)
    recv(fast)
    wait_for(lambda: srv.call("GET", "/ctl/stats")[1]["clients"] == 2, 5, what="2 clients")
    received = []
    errors = []

    def reader():
        try:
            while len(received) < 400:
                m = recv(fast, 10)
                if m["type"] == "video.completed":
                    received.append(m["data"]["id"])
        except Exception as e:  # reported below
            errors.append(repr(e))

    th = threading.Thread(target=reader)
    th.start()
    st, body = srv.call("POST", "/ctl/burst",
                        {"job_id": job, "count": 400, "pad": 8192, "sleep_us": 2000})
    check(st == 200, f"burst: {st}")
    # The publisher never waits for the stuck client.
    # A publisher that waited on the stuck client would block for the whole
    # burst (seconds); the bound is loose so a loaded CI machine can't trip it.
    check(body["max_publish_us"] < 1000000, f"a publish took {body['max_publish_us']} us")
    th.join(30)
    check(not errors, f"fast client: {errors}")
    check(received == [f"item_{i}" for i in range(400)],
          f"fast client got {len(received)} of 400 in order")
    # The stuck client is cut off: its socket reaches EOF (after whatever
    # the kernel had buffered) within the grace period plus a margin.
    slow.settimeout(1)
    deadline = time.time() + 15
    eof = False
    while time.time() < deadline and not eof:
        try:
            chunk = slow.recv(65536)
            eof = chunk == b""
        except TimeoutError:
            pass
        except ConnectionResetError:
            eof = True
    slow.close()
    check(eof, "the slow client was not disconnected")
    stats = wait_for(lambda: (lambda s: s if s["clients"] == 1 else None)(
        srv.call("GET", "/ctl/stats")[1]), 10, what="slow client gone")
    check(stats["slow_disconnects"] == 1, f"stats: {stats}")
    # The fast client is still served.
    publish(srv, job, {"type": "job.failed", "data": {"job_id": job, "error_code": "x",
                                                      "error_message": "done"}})
    check(recv(fast)["type"] == "job.failed", "fast client still served")
    fast.close()
    print("ok: slow client disconnected, publisher and fast client unaffected")


def test_heartbeat(build):
    srv = TestServer(build, "--heartbeat-ms", "400")
    try:
        job = "job_hb"
        srv.call("POST", "/ctl/jobs", {"job_id": job, "tenant": "acme"})
        c = connect(srv, f"/ws/bulk-jobs?job_id={job}", ACME)
        recv(c)
        publish(srv, job, {"type": "job.progress",
                           "data": {"job_id": job, "percent_complete": 5.0,
                                    "items_completed": 0, "items_total": 4,
                                    "eta_ms": None, "rate_limited": True}})
        got = []
        end = time.time() + 1.5
        while time.time() < end:
            try:
                got.append(recv(c, max(0.05, end - time.time())))
            except websocket.WebSocketTimeoutException:
                break
        pcts = [m["data"]["percent_complete"] for m in got if m["type"] == "job.progress"]
        check(len(pcts) >= 3 and all(p == 5.0 for p in pcts),
              f"progress repeated while nothing happens: {pcts}")
        publish(srv, job, {"type": "job.state_changed",
                           "data": {"job_id": job, "prior_state": "running",
                                    "new_state": "canceled", "reason": "user"}})
        check(recv(c)["type"] == "job.state_changed", "state change")
        no_message(c, 1.0)  # ended: no heartbeats
        c.close()
        print("ok: heartbeats")
    finally:
        srv.close()


SEED_CLIENT = r"""
import WebSocket from 'ws';

// The seeds' WebSocketMonitor.connect (004_466772a05d53a842.txt), unchanged
// in what it sends: both headers carry the token.
class WebSocketMonitor {
  constructor(jobId, apiKey, baseUrl) {
    this.jobId = jobId; this.apiKey = apiKey;
    this.baseUrl = baseUrl.replace('https://', 'wss://'); this.ws = null;
  }
  connect(onMessage, onError) {
    const wsUrl = `${this.baseUrl}/ws/bulk-jobs?job_id=${this.jobId}`;
    const headers = {
      'Authorization': `Bearer ${this.apiKey}`,
      'Sec-WebSocket-Protocol': `Bearer ${this.apiKey}`
    };
    this.ws = new WebSocket(wsUrl, { headers });
    this.ws.on('open', () => { console.log(JSON.stringify({event: 'open'})); });
    this.ws.on('message', (data) => { onMessage(JSON.parse(data.toString())); });
    this.ws.on('error', (error) => { if (onError) onError(error); });
    this.ws.on('close', (code) => { console.log(JSON.stringify({event: 'close', code})); });
  }
  disconnect() { if (this.ws) { this.ws.close(); this.ws = null; } }
}

const [port, jobId] = process.argv.slice(2);
const m = new WebSocketMonitor(jobId, 'tok-acme', `ws://127.0.0.1:${port}/api/v1`);
const timer = setTimeout(() => { console.log(JSON.stringify({event: 'timeout'})); process.exit(3); }, 15000);
m.connect((msg) => {
  console.log(JSON.stringify({event: 'message', msg}));
  if (msg.type === 'job.completed') { clearTimeout(timer); m.disconnect(); }
}, (err) => { console.log(JSON.stringify({event: 'error', message: err.message})); process.exit(2); });
"""


def test_seed_js_client(srv):
    node = shutil.which("node")
    ws_dir = "/usr/share/nodejs/ws"
    if node is None or not os.path.isdir(ws_dir):
        print("skip: seeds' JS client (node or Debian's node-ws not installed)")
        return
    job = "job_js"
    srv.call("POST", "/ctl/jobs", {"job_id": job, "tenant": "acme"})
    tmp = tempfile.mkdtemp(prefix="rf-live-js-")
    try:
        os.makedirs(os.path.join(tmp, "node_modules"))
        os.symlink(ws_dir, os.path.join(tmp, "node_modules", "ws"))
        with open(os.path.join(tmp, "monitor.mjs"), "w") as f:
            f.write(SEED_CLIENT)
        # Unbuffered: the snapshot's line can arrive with the "open" line, and
        # communicate() below reads the pipe itself, past any buffer.
        p = subprocess.Popen([node, os.path.join(tmp, "monitor.mjs"), str(srv.port), job],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
        try:
            line = b""
            while not line.endswith(b"\n"):
                byte = p.stdout.read(1)
                check(byte != b"", f"node client exited early: {line!r}")
                line += byte
            first = json.loads(line)
            check(first == {"event": "open"}, f"node client: {first}")
            for m in scripted_job(job):
                publish(srv, job, m)
            out, _ = p.communicate(timeout=20)
            out = out.decode("utf-8", "replace")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        msgs = [e["msg"] for e in events if e["event"] == "message"]
        check(p.returncode == 0, f"node client exit {p.returncode}: {out}")
        check([m["type"] for m in msgs] == ["job.state_changed"] +
              [m["type"] for m in scripted_job(job)], f"node client got {msgs}")
        check(events[-1] == {"event": "close", "code": 1005}, f"clean close: {events[-1]}")
        print("ok: the seeds' JS client (ws) works unchanged")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    a = harness.args()
    if websocket is None:
        print("skip: python3-websocket is not installed (scripts/setup.sh installs it)")
        return SKIP
    srv = TestServer(a.build, "--queue-msgs", "128", "--queue-bytes", str(1 << 20),
                     "--sndbuf", "65536", "--grace-ms", "1000")
    ok = False
    try:
        test_whole_job_two_clients_late_join(srv)
        test_refusals(srv)
        test_coalescing(srv)
        test_slow_client(srv)
        test_seed_js_client(srv)
        ok = True
    finally:
        err = srv.close()
        if not ok:
            print("live_testd stderr:\n" + err[-4000:])
    test_heartbeat(a.build)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"FAIL: {e}")
        sys.exit(1)
