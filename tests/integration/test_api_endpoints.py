"""Every endpoint of the API against a real coordinator (no agent needed):
create in both path styles with the seeds' request, get, progress, videos
with pages, the job list with keyset pages that stay correct while other
clients create jobs, templates (built-in and custom), analytics, a dry run,
validation errors naming their field, and the OpenAPI document checked
against what the server actually routes."""
import threading
import urllib.parse

from harness import Cluster, check, run

SEED_JOB = {  # the user guide's "Create Bulk Job" body, with inline rows for the sheet
    "title": "Spring Campaign Videos", "priority": "normal", "processing_deadline_ms": 7200000,
    "callback_url": "https://yourapp.com/webhooks/job",
    "input_source": {"type": "rows", "rows": [
        {"idea_title": f"Idea {i}", "description": "d", "script_content": "Say it.",
         "duration_seconds": 2, "platform_preferences": "youtube"} for i in range(1, 6)]},
    "output": {"format": "mp4", "video_codec": "h264", "audio_codec": "aac",
               "resolution": "720p", "output_bucket": "my-videos"},
    "template": {"template_id": "tpl_abc123", "overrides": {"style": "modern", "voice": "female"}},
}


def small_job(title):
    return {"title": title, "input_source": {"type": "rows", "rows": [
        {"idea_title": "x", "script_content": "y", "duration_seconds": 1}]},
        "output": {"output_bucket": "list", "resolution": "720p"}}


def create_get_progress_videos(c):
    code, job = c.post("/api/v1/bulk-jobs", SEED_JOB)
    check(code == 201, f"create: {code} {job}")
    for k in ("id", "state", "percent_complete", "items_total", "items_completed",
              "items_failed", "items_pending", "created_at", "eta_ms", "rate_limited"):
        check(k in job, f"the seeds read {k}: {job}")
    check(job["state"] == "pending" and job["items_total"] == 5, f"{job}")
    check(job["actions"] == ["cancel"], f"actions of a pending job: {job['actions']}")
    jid = job["id"]
    code, env = c.post("/api/bulk-jobs", SEED_JOB)
    check(code == 201 and env["success"] is True and env["data"]["items_pending"] == 5,
          f"/api create: {env}")
    code, got = c.get(f"/api/v1/bulk-jobs/{jid}")
    check(code == 200 and got["id"] == jid, f"get: {code}")
    code, p = c.get(f"/api/bulk-jobs/{jid}/progress")
    d = p["data"]
    check(code == 200 and d["job_id"] == jid, f"progress: {p}")
    check(d["items_status"] == {"total": 5, "completed": 0, "failed": 0, "pending": 5,
                                "skipped": 0}, f"items_status {d['items_status']}")
    check(set(d["timing"]) == {"started_at", "processing_time_ms", "eta_ms"}, f"{d['timing']}")
    check(d["rate_limited"] is False, "rate_limited")
    seen, token = [], None
    while True:
        q = "?page_size=2" + (f"&page_token={urllib.parse.quote(token)}" if token else "")
        code, page = c.get(f"/api/v1/bulk-jobs/{jid}/videos{q}")
        check(code == 200, f"videos: {code} {page}")
        seen += [v["row_number"] for v in page["videos"]]
        for v in page["videos"]:
            check(v["errors"] == [] and v["artifacts"] == [], f"fresh video {v}")
        token = page["next_page_token"]
        if token is None:
            break
    check(seen == [1, 2, 3, 4, 5], f"video rows {seen}")
    code, page = c.get(f"/api/v1/bulk-jobs/{jid}/videos?state=pending&page_size=100")
    check(code == 200 and len(page["videos"]) == 5, "videos by state")


def validation_errors(c):
    cases = [
        ({**SEED_JOB, "priority": "urgent"}, "priority"),
        ({**SEED_JOB, "processing_deadline_ms": 1000}, "processing_deadline_ms"),
        ({**SEED_JOB, "callback_url": "ftp://x"}, "callback_url"),
        ({**SEED_JOB, "output": {**SEED_JOB["output"], "format": "webm"}}, "output.video_codec"),
        ({**SEED_JOB, "output": {**SEED_JOB["output"], "resolution": "8k"}}, "output.resolution"),
        ({**SEED_JOB, "template": {"template_id": "tpl_nope"}}, "template.template_id"),
        ({k: v for k, v in SEED_JOB.items() if k != "title"}, "title"),
    ]
    for body, field in cases:
        code, err = c.post("/api/v1/bulk-jobs", body)
        check(code == 400 and err["error_code"] == "validation_error", f"{field}: {code} {err}")
        check(err["detail"]["field"] == field, f"{field}: detail {err['detail']}")
    code, err = c.post("/api/v1/bulk-jobs", {**SEED_JOB, "output": {
        **SEED_JOB["output"], "format": "webm"}})
    check("webm requires" in err["error_message"], f"incompatible reason: {err}")


def list_pages_while_creating(c):
    tenant = c.mint(sub="lister", tenant="listing")
    ids = []
    for i in range(17):
        code, j = c.post("/api/v1/bulk-jobs", small_job(f"L{i}"), token=tenant)
        check(code == 201, f"create {i}: {code}")
        ids.append(j["id"])
    stop = threading.Event()
    extra = []

    def creator():
        while not stop.is_set() and len(extra) < 40:
            code, j = c.request("POST", "/api/v1/bulk-jobs", small_job("concurrent"),
                                token=tenant)
            if code == 201:
                extra.append(j["id"])

    t = threading.Thread(target=creator)
    t.start()
    seen, token = [], None
    try:
        for _ in range(50):
            q = "?page_size=4&sort=created_at&order=desc"
            if token:
                q += f"&page_token={urllib.parse.quote(token)}"
            code, page = c.get(f"/api/v1/bulk-jobs{q}", token=tenant)
            check(code == 200, f"list: {code} {page}")
            seen += [j["id"] for j in page["jobs"]]
            token = page["next_page_token"]
            if token is None:
                break
    finally:
        stop.set()
        t.join(timeout=60)
    check(len(seen) == len(set(seen)), f"a job was listed twice: {seen}")
    missing = [i for i in ids if i not in seen]
    check(not missing, f"jobs missing from the pages: {missing}")
    check(len(extra) > 0, "the concurrent creator made nothing")
    # ascending, once everything is settled: every job once, oldest first
    # (jobs made in the same millisecond are ordered by id)
    seen, token = [], None
    while True:
        q = "?page_size=7&sort=created_at&order=asc"
        if token:
            q += f"&page_token={urllib.parse.quote(token)}"
        code, page = c.get(f"/api/v1/bulk-jobs{q}", token=tenant)
        seen += [(j["created_at"], j["id"]) for j in page["jobs"]]
        token = page["next_page_token"]
        if token is None:
            break
    check(sorted(i for _, i in seen) == sorted(ids + extra), "ascending pages: other jobs")
    check([t for t, _ in seen] == sorted(t for t, _ in seen), "ascending pages: order")
    check(page["total_count"] == len(seen), f"total_count {page['total_count']}")
    # a token is bound to its query
    code, first = c.get("/api/v1/bulk-jobs?page_size=2&sort=updated_at", token=tenant)
    code, err = c.get("/api/v1/bulk-jobs?page_size=2&sort=created_at&page_token="
                      + urllib.parse.quote(first["next_page_token"]), token=tenant)
    check(code == 400 and err["detail"]["field"] == "page_token", f"foreign token: {code}")
    code, page = c.get("/api/bulk-jobs?state=pending&page_size=3&sort=percent_complete",
                       token=tenant)
    check(code == 200 and len(page["data"]["jobs"]) == 3, f"wrapped list {code}")
    check(all(j["state"] == "pending" for j in page["data"]["jobs"]), "state filter")


def templates(c):
    code, body = c.get("/api/v1/templates")
    ids = {t["template_id"] for t in body["templates"]}
    for tid in ("tpl_standard", "tpl_promotional", "tpl_tutorial", "tpl_testimonial", "tpl_abc123"):
        check(tid in ids, f"built-in {tid} missing: {ids}")
    custom = {"template_id": "my_brand_template", "name": "My Brand Style",
              "description": "Custom template for brand videos",
              "settings": {"style": {"colors": ["#FF0000", "#00FF00", "#0000FF"],
                                     "font_family": "Arial", "logo_position": "bottom_right"},
                           "audio": {"background_music": "brand_track.mp3",
                                     "voice_settings": {"speed": 1.0, "pitch": 0.0}}}}
    code, t = c.post("/api/v1/templates", custom)
    check(code == 201 and t["settings"]["style"]["colors"][0] == "#FF0000", f"{code} {t}")
    check(c.last_headers.get("location") == "/api/v1/templates/my_brand_template", "Location")
    code, t = c.get("/api/templates/my_brand_template")
    check(code == 200 and t["data"]["name"] == "My Brand Style", f"get custom: {t}")
    code, err = c.post("/api/v1/templates", custom)
    check(code == 409, f"duplicate template: {code}")
    code, err = c.post("/api/v1/templates", {**custom, "template_id": "tpl_standard"})
    check(code == 409, f"shadowing a built-in: {code}")
    code, err = c.post("/api/v1/templates", {"template_id": "v", "name": "V", "settings": {
        "audio": {"voice_settings": {"speed": 5}}}})
    check(code == 400 and err["detail"]["field"] == "settings.audio.voice_settings.speed",
          f"speed: {err}")
    code, job = c.post("/api/v1/bulk-jobs",
                       {**SEED_JOB, "template": {"template_id": "my_brand_template"}})
    check(code == 201 and job["template"]["template_id"] == "my_brand_template", f"{code}")
    code, _ = c.get("/api/v1/templates/nope")
    check(code == 404, f"unknown template: {code}")


def analytics(c):
    code, a = c.get("/api/v1/bulk-jobs/analytics?start_date=2020-01-01&end_date=2099-12-31")
    check(code == 400, f"a range over 366 days: {code}")
    code, a = c.get("/api/v1/bulk-jobs/analytics?group_by=template_id")
    check(code == 200, f"analytics: {code} {a}")
    for k in ("total_jobs", "total_items", "success_rate", "avg_processing_time",
              "cost_summary", "groups"):
        check(k in a, f"analytics lacks {k}: {a}")
    check(a["total_jobs"] >= 3 and a["total_items"] >= 15, f"totals {a}")
    by = a["cost_summary"]["by_template"]
    check("tpl_abc123" in by and "my_brand_template" in by, f"by_template {by}")
    check(a["success_rate"] is None, "nothing finished: no success rate")
    code, w = c.get("/api/bulk-jobs/analytics")
    check(code == 200 and w["success"] and w["data"]["total_jobs"] == a["total_jobs"], "wrapped")


def openapi_against_server(c):
    code, doc = c.get("/api/v1/openapi.json", token=None)
    check(code == 200 and doc["openapi"] == "3.0.3", f"openapi {code}")
    n = 0
    for path, ops in doc["paths"].items():
        root = ops.get("servers", [{}])[0].get("url") == "/"
        concrete = path.replace("{job_id}", "job_00000000000000000000000000").replace(
            "{template_id}", "tpl_standard")
        for method in ops:
            if method in ("servers", "parameters"):
                continue
            n += 1
            for base in (("",) if root else ("/api/v1", "/api")):
                body = {} if method == "post" else None
                code, resp = c.request(method.upper(), base + concrete, body)
                # the route exists: anything but "no such endpoint" / wrong method
                no_route = (code == 404 and isinstance(resp, dict) and
                            "no such endpoint" in str(resp))
                check(not no_route and code != 405,
                      f"{method.upper()} {base}{concrete} is in openapi.json but not served: "
                      f"{code} {resp}")
    check(n >= 15, f"only {n} operations documented")
    code, resp = c.request("PUT", "/api/v1/bulk-jobs", {})
    check(code == 405, "PUT /bulk-jobs")


def main(a):
    c = Cluster(a.build)
    ok = False
    try:
        create_get_progress_videos(c)
        validation_errors(c)
        list_pages_while_creating(c)
        templates(c)
        analytics(c)
        openapi_against_server(c)
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
        c.close()


run(main)
