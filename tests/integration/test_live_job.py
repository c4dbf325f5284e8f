"""Live progress of a real job (docs/LIVE.md): the real coordinator and a real
agent render a 3-row 720p job whose last row fails at the storage step.

- A WebSocket client (Debian's python3-websocket) follows the whole job and
  sees the seed's messages in order: the snapshot, running, progress,
  video.completed (video, thumbnail and captions artifacts), video.failed,
  and the job.completed end; percent_complete never goes backwards.
- A late joiner gets the current state first; another tenant is refused.
- A receiver on 127.0.0.1 (allowed with --webhook-allow) verifies the
  Standard Webhooks signature with the secret from GET /webhooks/secret,
  answers 500 twice then 200; the deliveries arrive in order and the
  retries are listed by GET /bulk-jobs/{id}/webhooks.
- A callback_url on 10.0.0.1 is refused at creation (400, callback_url).
- A webhook whose event committed but was not queued when the coordinator
  stopped (made by hand in the database) is delivered after the restart,
  and nothing else twice."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Cluster, check, write_csv  # noqa: E402
from live_helpers import SKIP, import_websocket, wait_for  # noqa: E402

websocket = import_websocket()

ROWS = [
    {"idea_title": "Live one", "duration_seconds": "2", "platform_preferences": "youtube",
     "script_content": "One. Two."},
    {"idea_title": "Live two", "duration_seconds": "3", "platform_preferences": "youtube",
     "script_content": "Three. Four."},
    {"idea_title": "Live broken", "duration_seconds": "2", "platform_preferences": "youtube",
     "script_content": "Five."},
]


class Receiver:
    """Webhook receiver: 500, 500, then 200 for everything after."""

    def __init__(self):
        self.lock = threading.Lock()
        self.secret = None
        self.hits = []  # (time, headers, body, signature ok, status answered)
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    status = 500 if len(rec.hits) < 2 else 200
                    rec.hits.append((time.time(), dict(self.headers), body,
                                     rec.verify(self.headers, body), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def verify(self, headers, body):
        msg_id, ts = headers.get("webhook-id"), headers.get("webhook-timestamp")
        if not msg_id or not ts or self.secret is None or abs(time.time() - int(ts)) > 300:
            return False
        key = base64.b64decode(self.secret[len("whsec_"):])
        want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body,
                                         hashlib.sha256).digest()).decode()
        return any(hmac.compare_digest(s[3:], want)
                   for s in headers.get("webhook-signature", "").split() if s.startswith("v1,"))


class Follower:
    """A WebSocket client reading every message on a thread."""

    def __init__(self, port, job_id, token, path="/api/v1/ws/bulk-jobs", protocol_auth=False):
        hdr = ([f"Sec-WebSocket-Protocol: Bearer {token}"] if protocol_auth
               else [f"Authorization: Bearer {token}"])
        self.ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}?job_id={job_id}", header=hdr, timeout=60)
        self.msgs = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    return
                with self.lock:
                    self.msgs.append(json.loads(text))
        except Exception:  # closed
            return

    def types(self):
        with self.lock:
            return [m["type"] for m in self.msgs]

    def close(self):
        try:
            self.ws.close()
        except Exception:
            pass


def main(a):
    if websocket is None:
        print("SKIP: python3-websocket is not installed")
        sys.exit(SKIP)
    rec = Receiver()
    c = Cluster(a.build, ("--webhook-allow", "127.0.0.1", "--webhook-schedule", "0,1s,1s,1s",
                          "--webhook-jitter", "0", "--max-attempts", "1"))
    ok = False
    followers = []
    try:
        # The SSRF guard refuses a private target at creation.
        base = {"title": "live", "input_source": {"type": "rows", "rows": ROWS},
                "output": {"format": "mp4", "resolution": "720p", "output_bucket": "live"},
                "template": {"template_id": "tpl_standard"}}
        code, body = c.post("/api/v1/bulk-jobs", dict(base, callback_url="http://10.0.0.1/hook"))
        check(code == 400 and body["error_code"] == "validation_error"
              and body["detail"]["field"] == "callback_url", f"private target: {code} {body}")

        code, sec = c.get("/api/v1/webhooks/secret")
        check(code == 200 and sec["secret"].startswith("whsec_"), f"secret: {code} {sec}")
        rec.secret = sec["secret"]
        code, sec2 = c.get("/api/v1/webhooks/secret")
        check(sec2["secret"] == rec.secret, "the tenant's secret changed between reads")
        code, other = c.get("/api/v1/webhooks/secret", token=c.mint(tenant="other"))
        check(code == 200 and other["secret"] != rec.secret, "tenants share a webhook secret")

        code, job = c.post("/api/v1/bulk-jobs",
                           dict(base, callback_url=f"http://127.0.0.1:{rec.port}/hook"))
        check(code == 201, f"create: {code} {job}")
        jid = job["id"]
        # Row 4's final file name is taken by a directory: its unit renders
        # and then fails at the storage step (a failure seen live).
        broken = [v for v in c.videos(jid) if v["title"] == "Live broken"][0]["row_number"]
        os.makedirs(os.path.join(c.bucket_root, "live", jid,
                                 f"{broken:04d}-live-broken-youtube.mp4"))
        f1 = Follower(c.http_port, jid, c.token)
        f2 = Follower(c.http_port, jid, c.token, path="/ws/bulk-jobs", protocol_auth=True)
        followers += [f1, f2]
        wait_for(lambda: len(f1.msgs) >= 2 and len(f2.msgs) >= 2, 10, what="snapshots")
        check(f1.msgs[0]["type"] == "job.state_changed"
              and f1.msgs[0]["data"]["reason"] == "snapshot"
              and f1.msgs[0]["data"]["new_state"] == "pending", f"snapshot {f1.msgs[:2]}")
        check(f1.msgs[1]["type"] == "job.progress", f"snapshot progress {f1.msgs[:2]}")

        # Another tenant is refused before the upgrade, as a missing job.
        try:
            websocket.create_connection(
                f"ws://127.0.0.1:{c.http_port}/api/ws/bulk-jobs?job_id={jid}",
                header=[f"Authorization: Bearer {c.mint(tenant='other')}"], timeout=10)
            check(False, "another tenant's token was accepted")
        except websocket.WebSocketBadStatusException as e:
            check(e.status_code == 404, f"other tenant: {e.status_code}")

        c.start_agent("agent-1")
        done = c.wait_job(jid, timeout=120)
        check(done["state"] == "completed" and done["items_completed"] == 2
              and done["items_failed"] == 1, f"job end {done}")
        wait_for(lambda: "job.completed" in f1.types() and "job.completed" in f2.types(), 15,
                 what="job.completed on both clients")

        for f in (f1, f2):
            t = f.types()
            states = [m["data"]["new_state"] for m in f.msgs if m["type"] == "job.state_changed"]
            check(states[0] == "pending" and "running" in states and states[-1] == "completed",
                  f"states {states}")
            i_run = next(i for i, m in enumerate(f.msgs) if m["type"] == "job.state_changed"
                         and m["data"]["new_state"] == "running")
            # Short renders may finish before an agent progress report:
            # progress then follows each video message.
            i_prog = next(i for i in range(i_run, len(t)) if t[i] == "job.progress")
            i_vc = t.index("video.completed")
            i_vf = t.index("video.failed")
            i_end = t.index("job.completed")
            check(i_run < i_vc < i_end and i_run < i_prog < i_end and i_vf < i_end, f"order {t}")
            check(all(x == "job.progress" for x in t[i_end + 1:]), f"after the end {t}")
            check(t.count("video.completed") == 2 and t.count("video.failed") == 1,
                  f"video messages {t}")
            vc = f.msgs[i_vc]["data"]
            kinds = sorted(x["type"] for x in vc["artifacts"])
            check(kinds == ["captions", "thumbnail", "video"], f"artifacts {vc}")
            for art in vc["artifacts"]:
                check(os.path.isfile(art["url"][len("file://"):]), f"missing {art}")
            vf = f.msgs[i_vf]["data"]
            check(vf["row_number"] == broken and vf["errors"][0]["error_code"], f"video.failed {vf}")
            pct = [m["data"]["percent_complete"] for m in f.msgs if m["type"] == "job.progress"]
            check(all(x <= y + 1e-9 for x, y in zip(pct, pct[1:])) and pct[-1] == 100,
                  f"percent {pct}")
            jc = f.msgs[i_end]["data"]
            check(jc["summary"]["items_completed"] == 2 and jc["summary"]["items_failed"] == 1,
                  f"job.completed {jc}")

        # GET /videos lists the poster and captions too.
        for v in c.videos(jid):
            if v["state"] == "completed":
                kinds = sorted(x["type"] for x in v["artifacts"])
                check(kinds == ["captions", "thumbnail", "video"], f"videos artifacts {v}")

        # A late joiner gets the current (final) state first.
        late = Follower(c.http_port, jid, c.token, path="/api/ws/bulk-jobs")
        followers.append(late)
        wait_for(lambda: "job.completed" in late.types(), 10, what="late snapshot")
        check(late.msgs[0]["type"] == "job.state_changed"
              and late.msgs[0]["data"]["new_state"] == "completed", f"late {late.msgs[:3]}")

        # Webhooks: signed, in order, 500 twice then 200, retries visible.
        def delivered_all():
            code, wh = c.get(f"/api/v1/bulk-jobs/{jid}/webhooks")
            return code == 200 and wh["deliveries"] and all(
                d["state"] == "delivered" for d in wh["deliveries"])
        wait_for(delivered_all, 30, step=0.25, what="webhooks delivered")
        code, wh = c.get(f"/api/bulk-jobs/{jid}/webhooks")
        check(code == 200, f"webhooks (wrapped): {code} {wh}")
        code, wh = c.get(f"/api/v1/bulk-jobs/{jid}/webhooks")
        ds = wh["deliveries"]
        types = [d["event_type"] for d in ds]
        check(types[0] == "job.state_changed" and types[-1] == "job.completed", f"types {types}")
        first = ds[0]["attempts"]
        check([x["status_code"] for x in first] == [500, 500, 200]
              and [x["outcome"] for x in first] == ["retry", "retry", "delivered"],
              f"attempts {first}")
        with rec.lock:
            hits = list(rec.hits)
        check(all(h[3] for h in hits), "a webhook signature did not verify")
        check(hits[0][1]["webhook-id"] == hits[1][1]["webhook-id"] == hits[2][1]["webhook-id"],
              "webhook-id changed between retries")
        check(hits[1][0] - hits[0][0] >= 0.8 and hits[2][0] - hits[1][0] >= 0.8,
              f"retries too fast: {[round(h[0] - hits[0][0], 2) for h in hits[:3]]}")
        got = []
        for h in hits:
            if h[4] == 200:
                got.append(json.loads(h[2]))
        check([g["type"] for g in got] == types, f"order {[g['type'] for g in got]} vs {types}")
        states = [g["data"]["new_state"] for g in got if g["type"] == "job.state_changed"]
        check(states[0] == "running" and states[-1] == "completed", f"webhook states {states}")
        check(got[-1]["job_id"] == jid and got[-1]["state"] == "completed"
              and got[-1]["items_completed"] == 2, f"payload {got[-1]}")
        # A refused URL never got a job: nothing was posted for it.
        check(all(h[1].get("Host", "").startswith("127.0.0.1") for h in hits), "foreign hits")

        # A crash between an event's commit and its webhook's queueing leaves
        # the event stored, without a delivery, the outbox cursor before it.
        # Made here by hand on the stopped coordinator's database: the next
        # start queues that webhook, and nothing that was already queued.
        c.kill("coordinator", signal.SIGTERM)
        db = sqlite3.connect(c.db, timeout=10)
        last = db.execute("SELECT MAX(id) FROM events WHERE job_id = ? AND type = 'job.completed'",
                          (jid,)).fetchone()[0]
        cursor = db.execute("SELECT event_id FROM webhook_cursor").fetchone()[0]
        check(last is not None and cursor >= last, f"outbox cursor {cursor} before event {last}")
        gone = "SELECT id FROM webhook_deliveries WHERE job_id = ? AND event_type = 'job.completed'"
        db.execute(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({gone})", (jid,))
        db.execute("DELETE FROM webhook_deliveries WHERE job_id = ? AND event_type = "
                   "'job.completed'", (jid,))
        db.execute("UPDATE webhook_cursor SET event_id = ?", (last - 1,))
        db.commit()
        db.close()
        with rec.lock:
            before = len(rec.hits)
        c.start_coordinator()
        wait_for(lambda: len(rec.hits) > before, 30, step=0.1, what="the lost webhook")
        time.sleep(1.5)  # a duplicate would arrive as fast
        with rec.lock:
            again = rec.hits[before:]
        body = json.loads(again[0][2])
        check(len(again) == 1 and again[0][3] and body["type"] == "job.completed"
              and body["job_id"] == jid and body["state"] == "completed",
              f"after the restart: {[json.loads(h[2])['type'] for h in again]}")
        ok = True
    finally:
        for f in followers:
            f.close()
        rec.httpd.shutdown()
        if not ok:
            print(c.log("coordinator"))
        c.close(keep=not ok)
    return 0


if __name__ == "__main__":
    harness.run(main)
