"""Idempotency-Key against a real coordinator: the same key and body replay
the first answer (same status, same body, Idempotent-Replayed: true) and make
one job; another body is 409 idempotency_conflict; a second request while the
first is still running (its CSV comes from a deliberately slow local server)
is 409 too; refused requests are not remembered; keys must be 1..255
printable characters; a dry run never creates a job or a record."""
import http.server
import threading
import time

from harness import Cluster, check, run

CSV = ("idea_title,script_content,duration_seconds,platform_preferences\r\n"
       "Slow sheet row,Hello from a slow server.,2,youtube\r\n")


class SlowCsv(http.server.BaseHTTPRequestHandler):
    delay = 3.0

    def do_GET(self):
        time.sleep(self.delay)
        body = CSV.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def job(title="Idempotent job"):
    return {"title": title, "priority": "normal",
            "input_source": {"type": "rows", "rows": [
                {"idea_title": "Row", "script_content": "Words.", "duration_seconds": 2}]},
            "output": {"format": "mp4", "video_codec": "h264", "audio_codec": "aac",
                       "resolution": "720p", "output_bucket": "idem"},
            "template": {"template_id": "tpl_promotional"}}


def count_jobs(c):
    code, body = c.get("/api/v1/bulk-jobs?page_size=100")
    check(code == 200, f"list: {code}")
    return body["total_count"]


def replay_and_conflict(c):
    key = {"Idempotency-Key": "job_1761786000_ab12cd34"}
    before = count_jobs(c)
    code, first = c.post("/api/v1/bulk-jobs", job(), headers=key)
    check(code == 201, f"first: {code} {first}")
    check("idempotent-replayed" not in c.last_headers, "the first answer is not a replay")
    loc = c.last_headers.get("location")
    # the same body with other formatting and key order is the same request
    reordered = dict(reversed(list(job().items())))
    code, again = c.post("/api/v1/bulk-jobs", reordered, headers=key)
    check(code == 201, f"replay status {code}")
    check(again == first, f"replay body differs:\n{again}\n{first}")
    check(c.last_headers.get("idempotent-replayed") == "true", f"headers {c.last_headers}")
    check(c.last_headers.get("location") == loc, "replay Location")
    check(count_jobs(c) == before + 1, "a replay created a job")
    code, body = c.post("/api/v1/bulk-jobs", job("Another title"), headers=key)
    check(code == 409 and body["error_code"] == "idempotency_conflict", f"conflict: {code} {body}")
    # the user guide's path style is another request path: also a conflict
    code, body = c.post("/api/bulk-jobs", job(), headers=key)
    check(code == 409 and body["error"]["code"] == "idempotency_conflict", f"/api: {code} {body}")
    check(count_jobs(c) == before + 1, "a conflict created a job")


def refused_not_remembered(c):
    key = {"Idempotency-Key": "refused-first"}
    bad = job()
    bad["output"]["resolution"] = "8k"
    code, body = c.post("/api/v1/bulk-jobs", bad, headers=key)
    check(code == 400 and body["detail"]["field"] == "output.resolution", f"{code} {body}")
    code, body = c.post("/api/v1/bulk-jobs", job("Fixed"), headers=key)
    check(code == 201, f"the key of a refused request stayed taken: {code} {body}")
    code, body = c.post("/api/v1/bulk-jobs", job(), headers={"Idempotency-Key": "k" * 256})
    check(code == 400 and body["detail"]["field"] == "Idempotency-Key", f"long key: {code}")
    code, body = c.post("/api/v1/bulk-jobs", job(), headers={"Idempotency-Key": "k" * 255})
    check(code == 201, f"a 255-character key: {code} {body}")


def in_flight(c):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowCsv)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sheet.csv"
    body = job("From a slow CSV")
    body["input_source"] = {"type": "csv", "url": url}
    key = {"Idempotency-Key": "slow-one"}
    result = {}

    def first():
        result["first"] = c.request("POST", "/api/v1/bulk-jobs", body, key)

    try:
        t = threading.Thread(target=first)
        t.start()
        time.sleep(1.0)  # the first request is now waiting for the CSV
        code, second = c.post("/api/v1/bulk-jobs", body, headers=key)
        check(code == 409 and second["error_code"] == "idempotency_conflict",
              f"second request while the first runs: {code} {second}")
        check(second["detail"].get("in_flight") is True, f"detail {second['detail']}")
        t.join(timeout=30)
        code, created = result["first"]
        check(code == 201 and created["items_total"] == 1, f"first: {code} {created}")
        code, third = c.post("/api/v1/bulk-jobs", body, headers=key)
        check(code == 201 and third["id"] == created["id"], f"after it finished: {code}")
    finally:
        server.shutdown()
        server.server_close()


def dry_run(c):
    before = count_jobs(c)
    key = {"Idempotency-Key": "dry-then-real"}
    code, d = c.post("/api/v1/bulk-jobs?dry_run=true", job("Dry"), headers=key)
    check(code == 200 and d["dry_run"] is True and d["valid"] is True, f"dry run: {code} {d}")
    check(d["items_total"] == 1 and d["renditions_total"] == 1, f"dry run counts: {d}")
    check(d["estimate"]["processing_time_ms"] > 0 and d["estimate"]["cost"] > 0, d["estimate"])
    check(count_jobs(c) == before, "a dry run created a job")
    # and left no idempotency record: the key is still free for the real request
    code, real = c.post("/api/v1/bulk-jobs", job("Dry"), headers=key)
    check(code == 201, f"real request after a dry run: {code} {real}")


def main(a):
    c = Cluster(a.build)
    ok = False
    try:
        replay_and_conflict(c)
        refused_not_remembered(c)
        in_flight(c)
        dry_run(c)
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
        c.close()


run(main)
