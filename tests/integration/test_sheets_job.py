"""Google Sheets wired into the running coordinator, against fake_google.py:
a job read from a sheet with an API key and rendered by an agent; strict
versus permissive validation on the messy sheet; POST /sheets/connect in both
envelopes, checked with the seeds' SheetManager.validateSheetData (ported
from the JavaScript); a 429 from Google while a job is created (the job
exists at once, rate_limited, its rows read in the background: canceled,
restarted, failing, retried);
sheet errors as the API answers them; write-back of the row outcomes with a
service account (and its refusal without one); a 1,000-row sheet ingested
into a job (timed, not rendered)."""
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fake_google import RATE_LIMITED, FakeGoogle  # noqa: E402
from harness import SKIP, Cluster, Failure, args, check  # noqa: E402
from live_helpers import import_websocket  # noqa: E402
from sheets_common import API_KEY, HEADER, SA_EMAIL, genkey  # noqa: E402
from test_sheets_read import MESSY_ROWS  # noqa: E402

OUTPUT = {"format": "mp4", "video_codec": "h264", "audio_codec": "aac", "resolution": "720p",
          "output_bucket": "sheet-videos"}

# Two short rows an agent renders quickly, an empty one (skipped) and an
# invalid one (no script); Google leaves trailing empty cells out.
JOB_ROWS = [
    HEADER,
    ["Sheets one", "First row", "everyone", "upbeat", "2", "youtube", "A short script.",
     "female", "modern", "normal"],
    ["Sheets two", "", "", "", "3", "youtube", "Another short one."],
    [],
    ["No script row", "described only"],
]


def validate_sheet_data(connection):
    """The seeds' JavaScript SheetManager.validateSheetData and
    generateWarnings, line by line in Python."""
    sample = connection["sample"]
    missing = [c for c in ["A", "B", "C"] if c not in sample["columns"]]
    if missing:
        return {"valid": False, "errors": [f"Missing required columns: {', '.join(missing)}"]}
    errors = []
    for i, row in enumerate(sample["preview"]):
        if not row[0] or row[0].strip() == "":
            errors.append(f"Row {i + 1}: Title is required")
        if not row[1] or row[1].strip() == "":
            errors.append(f"Row {i + 1}: Script is required")
        if row[2] and not row[2].startswith("http"):
            errors.append(f"Row {i + 1}: Image URL must be valid HTTP(S) URL")
    warnings = []
    empty = len([r for r in sample["preview"] if not r[0] or r[0].strip() == ""])
    if empty > 0:
        warnings.append(f"{empty} empty rows will be skipped")
    if sample["row_count"] > 1000:
        warnings.append("Large batch size may take extended processing time")
    return {"valid": len(errors) == 0, "errors": errors, "warnings": warnings}


def job_body(sheet_id, rng="A1:J100", **extra):
    body = {"title": f"From sheet {sheet_id}",
            "input_source": {"type": "sheet", "sheet_id": sheet_id, "range": rng},
            "output": OUTPUT}
    body.update(extra)
    return body


def create(c, body, expect=201):
    code, job = c.post("/api/v1/bulk-jobs", body)
    check(code == expect, f"create: {code} {job}")
    return job


def reasons(c, job_id):
    out = {}
    for v in c.videos(job_id):
        for e in v.get("errors", []):
            out[v["row_number"]] = e["error_message"]
    return out


# ---- API key cluster ----

def test_job_from_sheet(c, g):
    c.start_agent("agent-1")
    job = create(c, job_body("jobsheet"))
    check(job["items_total"] == 4 and job["input_source"] == {
        "type": "sheet", "sheet_id": "jobsheet", "range": "A1:J100"}, job)
    check(job["items_failed"] == 1 and job["items_skipped"] == 1, job)
    check(g.api_requests() and all(r[3] == "key" for r in g.api_requests()),
          f"read with the API key: {g.api_requests()}")
    done = c.wait_job(job["id"], timeout=120)
    check(done["state"] == "completed" and done["items_completed"] == 2, done)
    why = reasons(c, job["id"])
    check(why.get(5, "").startswith("row 5: ") and "script_content" in why[5], why)
    for v in c.videos(job["id"]):
        if v["row_number"] in (2, 3):
            path = v["artifacts"][0]["path"]
            check(os.path.getsize(path) > 1000, f"video {path}")


def test_levels(c, g):
    strict = create(c, job_body("messy", validation_level="strict"))
    permissive = create(c, job_body("messy", validation_level="permissive"))
    moderate = create(c, job_body("messy"))
    counts = {n: (j["items_total"], j["items_failed"], j["items_skipped"])
              for n, j in (("strict", strict), ("moderate", moderate),
                           ("permissive", permissive))}
    # same sheet, 8 data rows, 2 of them empty; strict refuses the most
    check(counts == {"strict": (8, 5, 2), "moderate": (8, 4, 2), "permissive": (8, 0, 2)},
          counts)
    why = reasons(c, moderate["id"])
    check(why[7] == "row 7: duration_seconds must be a whole number of seconds (got 'abc')", why)
    check("row 5: " in why[5] and "script_content" in why[5], why)
    check(why[9] == "row 9: duration_seconds must be between 1 and 3600", why)
    for job in (strict, moderate, permissive):
        c.post(f"/api/v1/bulk-jobs/{job['id']}/cancel", {})
    code, err = c.post("/api/v1/bulk-jobs", job_body("messy", validation_level="lenient"))
    check(code == 400 and err["detail"]["field"] == "validation_level", err)


def test_connect(c, g):
    code, conn = c.post("/api/v1/sheets/connect",
                        {"sheet_id": "jobsheet", "range": "A1:J100", "share_permissions": "read"})
    check(code == 200, f"connect: {code} {conn}")
    check(conn["sheet_id"] == "jobsheet" and conn["range"] == "A1:J100"
          and conn["status"] == "connected", conn)
    s = conn["sample"]
    check(s["row_count"] == 4 and s["columns"][:3] == ["A", "B", "C"], s)
    check(s["preview"][0][:3] == ["Sheets one", "A short script.", ""], s["preview"])
    seed = validate_sheet_data(conn)
    # the row without a script shows in the preview: the seed's check sees it too
    check(seed["valid"] is False and seed["errors"] == ["Row 3: Script is required"], seed)
    check(conn["validation"]["valid"] is False and conn["validation"]["rows"]["skipped"] == 1,
          conn["validation"])
    # the user guide's envelope
    code, wrapped = c.post("/api/sheets/connect", {"sheet_id": "big", "range": "A:J"})
    check(code == 200 and wrapped["success"] is True, f"{code} {wrapped}")
    seed = validate_sheet_data(wrapped["data"])
    check(seed == {"valid": True, "errors": [], "warnings": []}, seed)
    # a token without sheets:connect
    code, body = c.post("/api/v1/sheets/connect", {"sheet_id": "big"},
                        token=c.mint(scope="jobs:read jobs:write"))
    check(code == 403, f"scope: {code} {body}")
    code, body = c.post("/api/v1/sheets/connect", {"range": "A1"})
    check(code == 400 and body["detail"]["field"] == "sheet_id", body)


def test_errors(c, g):
    code, body = c.post("/api/v1/bulk-jobs", job_body("nosuchsheet"))
    check(code == 422 and body["error_code"] == "sheet_not_found", f"{code} {body}")
    check(body["detail"]["google_http_status"] == 404, body)
    code, body = c.post("/api/v1/bulk-jobs", job_body("private"))
    check(code == 422 and body["error_code"] == "sheet_permission_denied", f"{code} {body}")
    code, body = c.post("/api/v1/bulk-jobs", job_body("jobsheet", rng="Nope!A1:B2"))
    check(code == 400 and body["error_code"] == "invalid_range", f"{code} {body}")
    # checked before any request
    n = len(g.api_requests())
    code, body = c.post("/api/v1/bulk-jobs", job_body("jobsheet", rng="A1:?"))
    check(code == 400 and body["detail"]["field"] == "input_source.range", body)
    code, body = c.post("/api/v1/bulk-jobs", job_body("bad id!"))
    check(code == 400 and body["detail"]["field"] == "input_source.sheet_id", body)
    check(len(g.api_requests()) == n, "invalid ids and ranges are refused without a request")
    code, body = c.post("/api/sheets/connect", {"sheet_id": "nosuchsheet"})
    check(code == 422 and body["error"]["code"] == "sheet_not_found", f"{code} {body}")
    # write-back needs a service account
    code, body = c.post("/api/v1/bulk-jobs", job_body(
        "jobsheet", writeback={"columns": {"state": "K", "url": "L", "error": "M"}}))
    check(code == 422 and body["error_code"] == "writeback_not_allowed", f"{code} {body}")


def job_of(c, job_id):
    code, job = c.get(f"/api/v1/bulk-jobs/{job_id}")
    check(code == 200, f"get {job_id}: {code} {job}")
    return job


def wait_rows(c, job_id, timeout=30):
    """Waits until the job's rows are read in the background."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = job_of(c, job_id)
        if not job.get("rows_pending"):
            return job
        time.sleep(0.05)
    raise Failure(f"the rows of {job_id} were not read in {timeout} s: {job}")


def deferred(c, g, sheet, n_429):
    """Creates a job from sheet while Google answers 429 n_429 times: it
    exists at once, pending, rate_limited, its rows still to be read."""
    g.fail_queue[:] = [(429, RATE_LIMITED)] * n_429
    t0 = time.monotonic()
    job = create(c, job_body(sheet))
    ms = (time.monotonic() - t0) * 1000
    check(job["state"] == "pending" and job["rate_limited"] is True
          and job["rate_limited_reasons"] == ["sheets_read"] and job["rows_pending"] is True
          and job["items_total"] == 0, job)
    return job, ms


def follow(c, job_id):
    websocket = import_websocket()
    if websocket is None:
        raise Failure("python3-websocket is missing (scripts/setup.sh installs it)")
    return websocket.create_connection(
        f"ws://127.0.0.1:{c.http_port}/api/v1/ws/bulk-jobs?job_id={job_id}",
        header=[f"Authorization: Bearer {c.token}"], timeout=30)


def test_rate_limit(c, g):
    # A 429 while the job is created: it is created at once and its rows
    # are read in the background, the job rate_limited until then.
    job, ms = deferred(c, g, "rows20", 20)
    print(f"     create answered at Google's first 429: {ms:.0f} ms", flush=True)
    code, p = c.get(f"/api/v1/bulk-jobs/{job['id']}/progress")
    check(code == 200 and p["rate_limited"] is True, f"{code} {p}")
    ws = follow(c, job["id"])
    flags = []
    try:
        # the snapshot says rate_limited; the flip back is sent when it happens
        deadline = time.time() + 30
        while time.time() < deadline and False not in flags:
            msg = json.loads(ws.recv())
            if msg["type"] == "job.progress":
                flags.append(msg["data"]["rate_limited"])
    finally:
        ws.close()
    check(flags[:1] == [True] and flags[-1] is False, f"job.progress rate_limited: {flags}")
    job = wait_rows(c, job["id"])
    check(not g.fail_queue, "every 429 was consumed")
    check(job["items_total"] == 20 and job["rate_limited"] is False
          and "rate_limited_reasons" not in job and job["state"] in ("pending", "running"), job)
    ev = job_events(c, job["id"], "job.rows_read")
    check(len(ev) == 1 and ev[0]["rows"] == 20, ev)
    c.post(f"/api/v1/bulk-jobs/{job['id']}/cancel", {})
    # A dry run answers with the read, however long Google makes it wait.
    g.fail_queue[:] = [(429, RATE_LIMITED)] * 10
    code, body = c.post("/api/v1/bulk-jobs?dry_run=true", job_body("rows20"))
    check(code == 429 and body["error_code"] == "rate_limited", f"{code} {body}")
    g.fail_queue.clear()


def test_rate_limit_cancel(c, g):
    # Canceled while it waits for Google: no rows arrive afterwards.
    job, _ = deferred(c, g, "rows20", 100000)
    code, body = c.post(f"/api/v1/bulk-jobs/{job['id']}/cancel", {})
    check(code == 200 and job_of(c, job["id"])["state"] == "canceled", f"{code} {body}")
    g.fail_queue.clear()
    time.sleep(1.0)
    job = job_of(c, job["id"])
    check(job["state"] == "canceled" and job["items_total"] == 0
          and job["rate_limited"] is False, job)
    check(not job_events(c, job["id"], "job.rows_read"), "rows read after the cancel")


def test_rate_limit_restart(c, g):
    # The coordinator stops while a job waits for its sheet: the next one
    # reads the rows (the wait is in the database, not in memory).
    job, _ = deferred(c, g, "rows20", 100000)
    c.kill("coordinator", signal.SIGTERM)
    g.fail_queue.clear()
    c.start_coordinator()
    job = wait_rows(c, job["id"])
    check(job["items_total"] == 20 and job["rate_limited"] is False, job)
    c.post(f"/api/v1/bulk-jobs/{job['id']}/cancel", {})


def test_rate_limit_then_error(c, g):
    # After the 429s Google says the sheet is gone: the job fails with that
    # error; a retry once the sheet exists reads the rows.
    job, _ = deferred(c, g, "latesheet", 1)
    job = c.wait_job(job["id"], timeout=30)
    check(job["state"] == "failed" and job["error_code"] == "sheet_not_found"
          and job["rate_limited"] is False and job["rows_pending"] is True, job)
    g.add_sheet("latesheet", [("Sheet1", JOB_ROWS)], link_public=True)
    code, body = c.post(f"/api/v1/bulk-jobs/{job['id']}/retry", {})
    check(code == 200, f"retry: {code} {body}")
    job = wait_rows(c, job["id"])
    check(job["items_total"] == 4 and job["state"] != "failed", job)
    c.post(f"/api/v1/bulk-jobs/{job['id']}/cancel", {})


def test_1000_rows(c, g):
    t0 = time.monotonic()
    job = create(c, job_body("big", rng="A:J"))
    ms = (time.monotonic() - t0) * 1000
    check(job["items_total"] == 1000 and job["items_failed"] == 0, job)
    print(f"     1,000-row sheet ingested into a job: create request {ms:.0f} ms", flush=True)
    check(ms < 15000, "1,000 rows took over 15 s")
    c.post(f"/api/v1/bulk-jobs/{job['id']}/cancel", {})


# ---- service-account cluster ----

def test_writeback(c, g):
    c.start_agent("agent-wb")
    cols = {"state": "K", "url": "L", "error": "M"}
    job = create(c, job_body("wbsheet", writeback={"columns": cols}))
    done = c.wait_job(job["id"], timeout=120)
    check(done["state"] == "completed", done)
    deadline = time.time() + 20
    while time.time() < deadline and not g.writes:
        time.sleep(0.1)
    check(g.writes, "no batchUpdate reached Google")
    tab = g.sheets["wbsheet"].tabs[0]
    check(tab.cell(2, 11) == "completed" and tab.cell(3, 11) == "completed",
          f"state column: {tab.rows}")
    check(tab.cell(2, 12).endswith(".mp4") and tab.cell(3, 12).endswith(".mp4"), tab.rows)
    check(tab.cell(4, 11) == "skipped" and tab.cell(4, 13) == "", tab.rows)
    check(tab.cell(5, 11) == "failed" and tab.cell(5, 13).startswith("row 5: ")
          and "script_content" in tab.cell(5, 13), tab.rows)
    check(tab.cell(2, 13) == "", "no error on a completed row")
    for w in g.writes:
        check(w["valueInputOption"] == "RAW", w)
    # the result is recorded in the job's events
    ev = job_events(c, job["id"], "sheets.writeback")
    check(len(ev) == 1 and ev[0]["rows"] == 4 and ev[0]["updated_cells"] >= 8, ev)

    # Google's 429 on the write: retried, and the job reads rate_limited meanwhile
    g.writes.clear()
    job = create(c, job_body("wbsheet", writeback={"columns": {"state": "N"}}))
    g.fail_queue[:] = [(429, RATE_LIMITED)] * 3  # the rows are read: these hit the write
    seen = False
    deadline = time.time() + 20
    while time.time() < deadline and not g.writes:
        code, p = c.get(f"/api/v1/bulk-jobs/{job['id']}/progress")
        seen = seen or (code == 200 and p["rate_limited"] is True)
        time.sleep(0.01)
    check(g.writes and tab.cell(2, 14) == "completed", f"write after 429s: {tab.rows}")
    check(seen, "progress never showed rate_limited while the write-back waited")
    code, p = c.get(f"/api/v1/bulk-jobs/{job['id']}/progress")
    check(p["rate_limited"] is False, p)


def test_writeback_restart(c, g):
    # The coordinator stops while a write-back waits on Google's quota: the
    # next one writes the results (what is left to write is in the database).
    g.writes.clear()
    job = create(c, job_body("wbsheet", writeback={"columns": {"state": "O"}}))
    g.fail_queue[:] = [(429, RATE_LIMITED)] * 100000
    deadline = time.time() + 60
    seen = False
    while time.time() < deadline and not seen:
        code, p = c.get(f"/api/v1/bulk-jobs/{job['id']}/progress")
        seen = code == 200 and p["state"] == "completed" and p["rate_limited"] is True
        time.sleep(0.02)
    check(seen, "the write-back never waited on the 429s")
    c.kill("coordinator", signal.SIGTERM)
    check(not g.writes, "nothing was written before the restart")
    g.fail_queue.clear()
    c.start_coordinator()
    deadline = time.time() + 20
    while time.time() < deadline and not g.writes:
        time.sleep(0.05)
    tab = g.sheets["wbsheet"].tabs[0]
    check(g.writes and tab.cell(2, 15) == "completed", f"write after the restart: {tab.rows}")
    check(len(job_events(c, job["id"], "sheets.writeback")) == 1, "one write-back recorded")


def job_events(c, job_id, kind):
    import sqlite3
    db = sqlite3.connect(c.db, timeout=10)
    try:
        rows = db.execute("SELECT data_json FROM events WHERE job_id = ? AND type = ?",
                          (job_id, kind)).fetchall()
    finally:
        db.close()
    return [json.loads(r[0]) for r in rows]


def setup(g):
    g.add_sheet("jobsheet", [("Sheet1", JOB_ROWS)], link_public=True)
    g.add_sheet("wbsheet", [("Sheet1", JOB_ROWS)], editors=[SA_EMAIL])
    g.add_sheet("private", [("Sheet1", JOB_ROWS)])
    g.add_sheet("messy", [("Sheet1", MESSY_ROWS)], link_public=True)
    g.add_sheet("rows20", [("Sheet1", [HEADER] + [[f"t{i}", "", "", "", "2", "", "s"]
                                                  for i in range(20)])], link_public=True)
    big = [HEADER] + [[f"Idea {i}", f"Description {i}", "everyone", "upbeat", str(30 + i % 60),
                       "youtube,tiktok" if i % 2 else "instagram", f"Script number {i}. " * 8,
                       ["female", "male", "neutral"][i % 3], "modern",
                       ["low", "normal", "high"][i % 3]] for i in range(1000)]
    g.add_sheet("big", [("Sheet1", big)], link_public=True)


def main():
    a = args()
    if shutil.which("openssl") is None:
        print("SKIP: openssl not found")
        return SKIP
    d = tempfile.mkdtemp(prefix="rf-sheets-job-")
    g = FakeGoogle(d).start()
    failed = 0
    try:
        g.api_keys.add(API_KEY)
        priv, pub = genkey(d, "sa")
        g.add_service_account(SA_EMAIL, pub)
        key_file = g.key_file(os.path.join(d, "sa.json"), SA_EMAIL, priv)
        setup(g)
        common = ["--sheets-api-base", g.base, "--sheets-csv-export-base", g.base,
                  "--sheets-backoff-initial-ms", "50", "--sheets-backoff-max-ms", "200",
                  "--sheets-max-retries", "3", "--sheets-writeback-poll-ms", "100"]
        plans = [(common + ["--sheets-api-key", API_KEY],
                  [test_job_from_sheet, test_levels, test_connect, test_errors,
                   test_rate_limit, test_rate_limit_cancel, test_rate_limit_restart,
                   test_rate_limit_then_error, test_1000_rows]),
                 (common + ["--sheets-credentials-file", key_file],
                  [test_writeback, test_writeback_restart])]
        for extra, tests in plans:
            c = Cluster(a.build, extra)
            try:
                for t in tests:
                    g.fail_queue.clear()
                    try:
                        t(c, g)
                        print(f"ok   {t.__name__}", flush=True)
                    except (Failure, KeyError, IndexError, TypeError) as e:
                        failed += 1
                        print(f"FAIL {t.__name__}: {e!r}\n{c.log('coordinator')[-3000:]}",
                              flush=True)
            finally:
                c.close()
    finally:
        g.stop()
        shutil.rmtree(d, ignore_errors=True)
    print("PASS" if failed == 0 else f"{failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
