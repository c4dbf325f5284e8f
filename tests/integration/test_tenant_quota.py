"""The tenant quota (tenant_max_units_in_flight) on a real coordinator with a
real two-slot agent: a tenant never has more units leased than its quota,
its job reads rate_limited with reason tenant_quota while units wait for a
place, another tenant's job runs beside it, and both end completed."""
import sqlite3
import time

from harness import Cluster, check, run


def job(title, rows):
    return {"title": title,
            "input_source": {"type": "rows", "rows": [
                {"idea_title": f"{title} {i}", "script_content": "A few words.",
                 "duration_seconds": 2, "platform_preferences": "youtube"}
                for i in range(1, rows + 1)]},
            "output": {"resolution": "720p", "output_bucket": "quota"}}


def leased_per_tenant(db):
    rows = db.execute("SELECT j.tenant, COUNT(*) FROM units u JOIN jobs j ON j.id = u.job_id"
                      " WHERE u.state = 'leased' GROUP BY j.tenant").fetchall()
    return dict(rows)


def main(a):
    c = Cluster(a.build, ("--tenant-max-units-in-flight", "1"))
    ok = False
    try:
        other = c.mint(tenant="other-tenant")
        code, mine = c.post("/api/v1/bulk-jobs", job("Mine", 3))
        check(code == 201, f"create: {code} {mine}")
        code, theirs = c.request("POST", "/api/v1/bulk-jobs", job("Theirs", 1), token=other)
        check(code == 201, f"create (other tenant): {code} {theirs}")
        c.start_agent("agent-q", "--slots", "2")
        db = sqlite3.connect(c.db, timeout=10)
        most = {}
        held, both = False, False
        deadline = time.time() + 180
        while time.time() < deadline:
            per = leased_per_tenant(db)
            for t, n in per.items():
                most[t] = max(most.get(t, 0), n)
            both = both or len(per) == 2
            code, p = c.get(f"/api/v1/bulk-jobs/{mine['id']}/progress")
            check(code == 200, f"progress: {code} {p}")
            if p["rate_limited"]:
                code, j = c.get(f"/api/v1/bulk-jobs/{mine['id']}")
                held = held or (j.get("rate_limited_reasons") == ["tenant_quota"])
            if p["state"] in ("completed", "failed", "canceled"):
                break
            time.sleep(0.02)
        db.close()
        done = c.wait_job(mine["id"], timeout=60)
        check(done["state"] == "completed" and done["items_completed"] == 3, done)
        check(done["rate_limited"] is False, f"an ended job is not held back: {done}")
        deadline = time.time() + 60
        while True:
            code, t = c.get(f"/api/v1/bulk-jobs/{theirs['id']}", token=other)
            check(code == 200, f"{code} {t}")
            if t["state"] == "completed" or time.time() > deadline:
                break
            time.sleep(0.25)
        check(t["state"] == "completed", f"the other tenant's job: {t}")
        check(most.get("default", 0) == 1, f"most units leased at once per tenant: {most}")
        check(held, "the job never showed rate_limited with reason tenant_quota")
        check(both, "the other tenant's unit never ran beside this tenant's")
        ok = True
    finally:
        if not ok:
            print(c.log("coordinator"))
        c.close(keep=not ok)


if __name__ == "__main__":
    run(main)
