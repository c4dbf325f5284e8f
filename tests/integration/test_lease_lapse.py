"""Lease lapse: an agent is killed with SIGKILL in the middle of a unit; its
lease runs out, the unit goes back to the queue, a second agent renders it,
and the job ends completed with exactly one output for the item."""
import os
import time

from harness import Cluster, check, decode_errors, ffprobe, run


def main(a):
    c = Cluster(a.build, ["--lease-ttl-ms", "1500", "--reaper-interval-ms", "200"])
    ok = False
    try:
        c.start_agent("doomed")
        script = " ".join(["This sentence keeps the narrator busy for a little while."] * 3)
        req = {"title": "Lease lapse", "priority": "high",
               "input_source": {"type": "rows", "rows": [
                   {"idea_title": "A long unit", "duration_seconds": 20,
                    "platform_preferences": "youtube", "script_content": script}]},
               "output": {"resolution": "1080p", "output_bucket": "lapse"}}
        code, job = c.post("/api/v1/bulk-jobs", req)
        check(code == 201, f"create: {code} {job}")

        # Wait until the doomed agent has reported frames, then kill it.
        deadline = time.time() + 120
        while True:
            check(time.time() < deadline, "the first agent never reported progress")
            r = c.videos(job["id"])[0]["renditions"][0]
            if r["frames_done"] > 0 and r["agent_id"] == "doomed":
                break
            time.sleep(0.1)
        c.kill("doomed")
        killed_at = time.time()
        parts = [n for _, _, ns in os.walk(c.bucket_root) for n in ns]
        check(any(".part-" in n for n in parts), f"expected a partial file, found {parts}")

        c.start_agent("rescuer")
        done = c.wait_job(job["id"], timeout=300)
        check(done["state"] == "completed", f"job ended {done['state']}")
        v = c.videos(job["id"])[0]
        r = v["renditions"][0]
        check(r["attempts"] == 2, f"attempts {r['attempts']}, expected 2")
        check(r["agent_id"] == "rescuer", f"finished by {r['agent_id']}")
        files = sorted(os.path.join(d, n) for d, _, ns in os.walk(c.bucket_root) for n in ns)
        art = [x for x in v["artifacts"] if x["type"] == "video"][0]
        base = art["path"][:-len(".mp4")]
        # One video with its poster and captions; the killed agent's partial
        # file is gone.
        check(files == sorted([base + ".jpg", base + ".mp4", base + ".vtt"]),
              f"expected exactly one output (+ poster, captions), found {files}")
        info = ffprobe(art["path"])
        check(abs(float(info["format"]["duration"]) - 20.0) <= 0.5, "duration")
        check(decode_errors(art["path"]) == "", "decode errors")
        log = c.log("coordinator")
        check("expire" in log or "lapse" in log, "the coordinator did not log the lease expiry")
        print(f"requeued and finished {time.time() - killed_at:.1f} s after the kill")
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
            for n in ("doomed", "rescuer"):
                if n in c.logs:
                    print(f"--- {n} log ---\n" + c.log(n))
        c.close()


run(main)
