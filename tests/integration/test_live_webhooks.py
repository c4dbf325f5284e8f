"""Webhook delivery against a local receiver on 127.0.0.1 that verifies the
Standard Webhooks signature: 500 twice then 200 with growing delays, order
per job, Retry-After on 429, 410 disables the endpoint, 3xx is a failure,
and refused targets (private, metadata, and 127.0.0.1 itself unless the
operator allows it) that are never contacted. Standard library only."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from live_helpers import Failure, TestServer, check, wait_for  # noqa: E402

SECRET = "whsec_cmVuZGVyZmFybS10ZXN0LWtleS0wMTIzNDU2Nzg5YWI="


def verify(headers, body):
    """The receiver's check, written from the Standard Webhooks spec."""
    msg_id = headers.get("webhook-id")
    ts = headers.get("webhook-timestamp")
    sigs = headers.get("webhook-signature", "")
    if not msg_id or not ts or abs(time.time() - int(ts)) > 300:
        return False
    key = base64.b64decode(SECRET[len("whsec_"):])
    want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body,
                                     hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s[3:], want) for s in sigs.split() if s.startswith("v1,"))


class Receiver:
    """Answers per path from a script of statuses (the last one repeats)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = []  # (time, path, headers, body, signature ok)
        self.scripts = {
            "/flaky": [500, 500, 200],
            "/order": [500, 500, 200],
            "/gone": [410],
            "/throttled": [(429, {"Retry-After": "1"}), 200],
            "/moved": [(302, {"Location": "http://127.0.0.1:1/elsewhere"})],
        }
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                ok = verify(self.headers, body)
                with rec.lock:
                    count = sum(1 for h in rec.hits if h[1] == self.path)
                    rec.hits.append((time.time(), self.path, dict(self.headers), body, ok))
                    script = rec.scripts.get(self.path, [200])
                    step = script[min(count, len(script) - 1)]
                status, extra = step if isinstance(step, tuple) else (step, {})
                if not ok:
                    status = 401
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def hits_for(self, path):
        with self.lock:
            return [h for h in self.hits if h[1] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def enqueue(srv, job, url, type_="job.state_changed", state="running"):
    st, body = srv.call("POST", "/ctl/webhook", {"job_id": job, "tenant": "acme", "url": url,
                                                 "type": type_, "state": state,
                                                 "data": {"job_id": job, "new_state": state}})
    check(st == 201, f"enqueue: {st} {body}")
    return body["delivery_id"]


def final(srv, did, timeout=15):
    def done():
        st, d = srv.call("GET", f"/ctl/webhook?id={did}")
        return d if st == 200 and d["state"] != "pending" else None
    return wait_for(done, timeout, what=f"delivery {did} to finish")


def test_retries_with_backoff(srv, rec):
    did = enqueue(srv, "job_w1", rec.url("/flaky"))
    d = final(srv, did)
    check(d["state"] == "delivered", f"state {d}")
    log = d["log"]
    check([a["status_code"] for a in log] == [500, 500, 200], f"statuses {log}")
    check([a["outcome"] for a in log] == ["retry", "retry", "delivered"], f"outcomes {log}")
    check([a["attempt"] for a in log] == [1, 2, 3], f"attempt numbers {log}")
    hits = rec.hits_for("/flaky")
    check(len(hits) == 3 and all(h[4] for h in hits), "three signed requests")
    ids = {h[2]["webhook-id"] for h in hits}
    check(len(ids) == 1, f"one webhook-id across retries: {ids}")
    body = json.loads(hits[0][3])
    for k in ("id", "type", "timestamp", "job_id", "state", "percent_complete",
              "items_completed", "items_total"):
        check(k in body, f"payload lacks {k}: {body}")
    check(body["id"] == hits[0][2]["webhook-id"], "payload id = webhook-id")
    # Schedule 0, 300 ms, 900 ms with +-20% jitter: delays grow.
    d1, d2 = hits[1][0] - hits[0][0], hits[2][0] - hits[1][0]
    check(0.2 <= d1 <= 0.7, f"first retry after {d1:.3f}s")
    check(0.65 <= d2 <= 1.5, f"second retry after {d2:.3f}s")
    check(d2 > d1, f"backoff grows: {d1:.3f}s then {d2:.3f}s")
    print(f"ok: 500, 500, 200 delivered; retries after {d1:.2f}s and {d2:.2f}s")


def test_order_per_job(srv, rec):
    first = enqueue(srv, "job_w2", rec.url("/order"), state="running")
    second = enqueue(srv, "job_w2", rec.url("/order"), type_="job.completed", state="completed")
    check(final(srv, first)["state"] == "delivered", "first delivered")
    check(final(srv, second)["state"] == "delivered", "second delivered")
    states = [json.loads(h[3])["state"] for h in rec.hits_for("/order")]
    check(states == ["running", "running", "running", "completed"],
          f"the later event waits for the earlier one: {states}")
    print("ok: in order per job")


def test_retry_after(srv, rec):
    did = enqueue(srv, "job_w3", rec.url("/throttled"))
    d = final(srv, did)
    check(d["state"] == "delivered", f"state {d}")
    hits = rec.hits_for("/throttled")
    gap = hits[1][0] - hits[0][0]
    check(gap >= 0.95, f"Retry-After: 1 honoured over the 300 ms schedule: {gap:.3f}s")
    print(f"ok: Retry-After honoured ({gap:.2f}s)")


def test_gone_and_redirect(srv, rec):
    did = enqueue(srv, "job_w4", rec.url("/gone"))
    d = final(srv, did)
    check(d["state"] == "abandoned" and d["log"][0]["outcome"] == "disabled", f"410: {d}")
    later = enqueue(srv, "job_w5", rec.url("/gone"))
    d = final(srv, later)
    check(d["state"] == "abandoned" and d["log"] == [], f"disabled endpoint not called: {d}")
    check(len(rec.hits_for("/gone")) == 1, "410 endpoint called once")

    did = enqueue(srv, "job_w6", rec.url("/moved"))
    d = final(srv, did, timeout=20)
    check(d["state"] == "abandoned", f"3xx fails every attempt: {d}")
    check(all(a["status_code"] == 302 and "redirect not followed" in a["error"]
              for a in d["log"]), f"3xx recorded as failure: {d['log']}")
    check(len(rec.hits_for("/moved")) == len(d["log"]), "redirect target never contacted")
    print("ok: 410 disables, 3xx is a failure and not followed")


def test_refused_targets(srv, rec, build):
    for url, why in (("http://10.0.0.1:8080/hook", "private"),
                     ("http://169.254.169.254/latest/meta-data/", "link-local"),
                     ("http://[::1]:8080/hook", "loopback"),
                     ("ftp://127.0.0.1/hook", "only http and https")):
        did = enqueue(srv, "job_w7", url)
        d = final(srv, did)
        a = d["log"][0]
        check(d["state"] == "abandoned" and len(d["log"]) == 1, f"{url}: {d}")
        check(a["status_code"] == 0 and why in a["error"], f"{url}: {a}")
        # Refused by the check itself: no connect was attempted.
        check(a["duration_ms"] < 200, f"{url}: took {a['duration_ms']} ms")
    # Without an allow list even 127.0.0.1 is refused, before any request.
    strict = TestServer(build, "--webhook-schedule", "0,300ms,900ms")
    try:
        before = len(rec.hits_for("/flaky"))
        did = enqueue(strict, "job_w8", rec.url("/flaky"))
        d = final(strict, did)
        check(d["state"] == "abandoned" and "loopback" in d["log"][0]["error"], f"{d}")
        check(len(rec.hits_for("/flaky")) == before, "the receiver was not contacted")
    finally:
        strict.close()
    print("ok: private, metadata and unallowed loopback targets refused before connecting")


def main():
    a = harness.args()
    rec = Receiver()
    srv = TestServer(a.build, "--webhook-allow", "127.0.0.1",
                     "--webhook-schedule", "0,300ms,900ms,1s", "--webhook-timeout-ms", "5000",
                     "--webhook-secret", SECRET)
    ok = False
    try:
        test_retries_with_backoff(srv, rec)
        test_order_per_job(srv, rec)
        test_retry_after(srv, rec)
        test_gone_and_redirect(srv, rec)
        test_refused_targets(srv, rec, a.build)
        ok = True
    finally:
        err = srv.close()
        rec.close()
        if not ok:
            print("live_testd stderr:\n" + err[-4000:])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"FAIL: {e}")
        sys.exit(1)
