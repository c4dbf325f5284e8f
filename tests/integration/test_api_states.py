"""The user guide's state table over HTTP, every cell, on a real coordinator
with real agents. Jobs are held in each state deterministically: pending
with no agent; running / completing by starting an agent and freezing it
(SIGSTOP) as soon as it holds a unit of a long video; pausing / canceling by
acting while it is frozen; paused by letting the frozen agent hand its unit
back (SIGTERM + SIGCONT); canceled / failed by cancel and by a processing
deadline; completed by a short real render. Allowed actions move the job as
the table says; refused ones are 409 invalid_state naming the state and
change nothing. Also: canceling ends when the agent's next heartbeat is told
"canceled" (the agent stops), a deadline fails a job and stops its agent,
retry requeues failed items only, analytics count the rendered video."""
import os
import signal
import time

from harness import Cluster, check, run

ACTIONS = ("pause", "resume", "cancel", "retry")
TABLE = {"pending": {"cancel"}, "running": {"pause", "cancel"}, "pausing": set(),
         "paused": {"resume", "cancel"}, "completing": set(), "completed": set(),
         "canceling": set(), "canceled": set(), "failed": {"retry", "cancel"}}
LONG_S = 40  # seconds of video: renders for seconds, never within one test step
VERY_LONG_S = 300  # renders for much longer than a heartbeat interval


def job(title, rows=2, seconds=LONG_S, deadline_ms=None):
    body = {"title": title, "priority": "high",
            "input_source": {"type": "rows", "rows": [
                {"idea_title": f"{title} {i}", "script_content": "Words for the narrator.",
                 "duration_seconds": seconds, "platform_preferences": "youtube"}
                for i in range(1, rows + 1)]},
            "output": {"resolution": "720p", "output_bucket": "states"}}
    if deadline_ms is not None:
        body["processing_deadline_ms"] = deadline_ms
    return body


class States:
    def __init__(self, c):
        self.c = c
        self.cells = set()
        self.agents = 0

    def create(self, body):
        code, j = self.c.post("/api/v1/bulk-jobs", body)
        check(code == 201, f"create: {code} {j}")
        return j["id"]

    def state(self, jid):
        code, j = self.c.get(f"/api/v1/bulk-jobs/{jid}")
        check(code == 200, f"get: {code} {j}")
        return j["state"]

    def wait_state(self, jid, want, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.state(jid)
            if s == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"job {jid} is {self.state(jid)}, never {want}")

    def act(self, jid, action):
        return self.c.post(f"/api/v1/bulk-jobs/{jid}/{action}", {})

    def refused(self, jid, state, skip=()):
        """Every action the table refuses in state: 409, state unchanged."""
        check(self.state(jid) == state, f"job {jid} should be {state}, is {self.state(jid)}")
        for action in ACTIONS:
            if action in TABLE[state] or action in skip:
                continue
            code, body = self.act(jid, action)
            check(code == 409, f"{action} in {state}: {code} {body}")
            check(body["error_code"] == "invalid_state", f"{action} in {state}: {body}")
            check(state in body["error_message"], f"message lacks the state: {body}")
            check(body["detail"]["state"] == state and
                  body["detail"]["allowed_actions"] == sorted(TABLE[state], key=ACTIONS.index),
                  f"detail {body['detail']}")
            check(self.state(jid) == state, f"{action} changed a {state} job")
            self.cells.add((state, action))
        # the wrapped style refuses the same way
        for action in ACTIONS:
            if action not in TABLE[state] and action not in skip:
                code, body = self.c.post(f"/api/bulk-jobs/{jid}/{action}", {})
                check(code == 409 and body["success"] is False and
                      body["error"]["code"] == "invalid_state", f"/api {action}: {body}")
                break

    def allowed(self, jid, state, action, expect):
        check(self.state(jid) == state, f"job {jid} should be {state}, is {self.state(jid)}")
        code, body = self.act(jid, action)
        check(code == 200, f"{action} in {state}: {code} {body}")
        check(body["state"] == expect, f"{action} in {state} gave {body['state']}, not {expect}")
        self.cells.add((state, action))
        return body

    def hold(self, jid):
        """Starts an agent and freezes it once it holds a unit of jid."""
        self.agents += 1
        name = f"agent-{self.agents}"
        self.c.start_agent(name)
        deadline = time.time() + 30
        while True:
            check(time.time() < deadline, f"{name} never leased a unit of {jid}")
            code, page = self.c.get(f"/api/v1/bulk-jobs/{jid}/videos?page_size=100")
            if any(r["agent_id"] == name and r["state"] == "leased"
                   for v in page["videos"] for r in v["renditions"]):
                break
            time.sleep(0.02)
        self.c.signal(name, signal.SIGSTOP)
        return name

    def release(self, name):
        """The frozen agent hands its unit back (SIGTERM, then SIGCONT) and exits."""
        self.c.signal(name, signal.SIGTERM)
        self.c.signal(name, signal.SIGCONT)
        self.c.procs[name].wait(timeout=30)

    def events(self, jid, kind):
        return self.c.log("coordinator").count(f"job {jid}: ") if kind else 0


def pending_and_canceled(s):
    jid = s.create(job("Pending"))
    s.refused(jid, "pending")
    body = s.allowed(jid, "pending", "cancel", "canceled")
    check(body["items_skipped"] == 2 and body["items_pending"] == 0, f"canceled counts {body}")
    s.refused(jid, "canceled")


def running_pausing_paused(s):
    jid = s.create(job("Pause me"))
    agent = s.hold(jid)
    s.refused(jid, "running")
    s.allowed(jid, "running", "pause", "pausing")
    s.refused(jid, "pausing")
    # the unit in flight goes back (the agent hands it in): pausing -> paused
    s.release(agent)
    s.wait_state(jid, "paused")
    s.refused(jid, "paused")
    code, p = s.c.get(f"/api/v1/bulk-jobs/{jid}/progress")
    check(p["timing"]["eta_ms"] is None, f"an ETA while paused: {p}")
    s.allowed(jid, "paused", "resume", "running")
    # nothing in flight now: cancel ends it at once
    s.allowed(jid, "running", "cancel", "canceled")


def canceling_heartbeat(s):
    jid = s.create(job("Cancel me", seconds=VERY_LONG_S))
    agent = s.hold(jid)
    s.allowed(jid, "running", "cancel", "canceling")
    s.refused(jid, "canceling")
    # the agent wakes up; its next heartbeat is refused "canceled" and it stops
    s.c.signal(agent, signal.SIGCONT)
    s.wait_state(jid, "canceled", timeout=30)
    deadline = time.time() + 10
    while "progress refused (canceled" not in s.c.log(agent):
        check(time.time() < deadline, "the agent was not told to stop:\n" + s.c.log(agent))
        time.sleep(0.1)
    check("stopped: its lease is gone" in s.c.log(agent) or
          "progress refused" in s.c.log(agent), "the agent did not stop its render")
    vids = s.c.videos(jid)
    check(all(v["state"] == "skipped" for v in vids), f"videos of a canceled job: {vids}")
    s.release(agent)


def completing(s):
    jid = s.create(job("Last unit", rows=1))
    agent = s.hold(jid)
    s.refused(jid, "completing")
    s.release(agent)  # its only unit goes back: completing -> running
    s.wait_state(jid, "running")
    s.allowed(jid, "running", "cancel", "canceled")


def paused_cancel(s):
    jid = s.create(job("Pause then cancel"))
    agent = s.hold(jid)
    s.allowed(jid, "running", "pause", "pausing")
    s.release(agent)
    s.wait_state(jid, "paused")
    s.allowed(jid, "paused", "cancel", "canceled")


def deadline_failed_retry(s):
    jid = s.create(job("Too slow", rows=2, seconds=2, deadline_ms=2000))
    s.wait_state(jid, "failed", timeout=15)
    code, j = s.c.get(f"/api/v1/bulk-jobs/{jid}")
    check(j["error_code"] == "deadline_exceeded", f"error {j}")
    check(j["items_skipped"] == 2, f"unstarted items should be skipped: {j}")
    vids = s.c.videos(jid)
    check(all(v["errors"][0]["error_code"] == "deadline_exceeded" for v in vids), f"{vids}")
    s.refused(jid, "failed")
    body = s.allowed(jid, "failed", "retry", "pending")
    check(body["items_pending"] == 2 and body["error_code"] is None, f"after retry {body}")
    # a new deadline window: it fails again, and can be canceled
    s.wait_state(jid, "failed", timeout=15)
    s.allowed(jid, "failed", "cancel", "canceled")


def deadline_stops_agent(s):
    jid = s.create(job("Deadline in flight", rows=1, seconds=VERY_LONG_S, deadline_ms=3000))
    s.agents += 1
    name = f"agent-{s.agents}"
    s.c.start_agent(name)
    s.wait_state(jid, "failed", timeout=20)
    deadline = time.time() + 15
    while "progress refused (canceled" not in s.c.log(name):
        check(time.time() < deadline, "the agent kept rendering:\n" + s.c.log(name))
        time.sleep(0.1)
    v = s.c.videos(jid)[0]
    check(v["state"] == "failed" and v["errors"][0]["error_code"] == "deadline_exceeded", f"{v}")
    outputs = [n for _, _, ns in os.walk(os.path.join(s.c.bucket_root, "states", jid))
               for n in ns if n.endswith(".mp4")]
    check(outputs == [], f"a stopped render left outputs: {outputs}")
    s.release(name)


def completed_and_analytics(s):
    jid = s.create(job("Short render", rows=1, seconds=2))
    s.agents += 1
    name = f"agent-{s.agents}"
    s.c.start_agent(name)
    done = s.c.wait_job(jid, timeout=90)
    check(done["state"] == "completed", f"render ended {done['state']}")
    check(done["percent_complete"] == 100 and done["eta_ms"] == 0, f"{done}")
    s.refused(jid, "completed")
    s.release(name)
    code, a = s.c.get("/api/v1/bulk-jobs/analytics?group_by=template_id")
    check(code == 200, f"analytics {code}")
    check(a["total_jobs"] >= 8 and a["items_completed"] >= 1, f"analytics {a}")
    # 2 s at 720p: 2/60 min x 0.01, plus its render time on CPU (well under
    # a minute at 0.002/min); nothing for the failed and canceled work
    cost = a["cost_summary"]["by_template"]["tpl_standard"]
    check(0.000333 <= cost < 0.000333 + 0.002, f"cost {cost}")
    check(a["success_rate"] is not None and 0 < a["success_rate"] < 1, f"success {a}")
    check(a["avg_processing_time"] is not None and a["avg_processing_time"] > 0, f"avg {a}")


def main(a):
    # A short lease (heartbeat every 3 s; a frozen agent keeps its unit for
    # 9 s, far longer than any step) and a fast reaper; deadlines of a few
    # seconds are allowed for this test only.
    c = Cluster(a.build, ["--lease-ttl-ms", "9000", "--reaper-interval-ms", "100",
                          "--deadline-min-ms", "1000"])
    s = States(c)
    ok = False
    t0 = time.time()
    try:
        pending_and_canceled(s)
        running_pausing_paused(s)
        canceling_heartbeat(s)
        completing(s)
        paused_cancel(s)
        deadline_failed_retry(s)
        deadline_stops_agent(s)
        completed_and_analytics(s)
        every = {(st, ac) for st in TABLE for ac in ACTIONS}
        missing = every - s.cells
        check(not missing, f"state-table cells not exercised: {sorted(missing)}")
        print(f"all {len(every)} cells checked in {time.time() - t0:.1f} s")
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
            for name in c.procs:
                if name.startswith("agent"):
                    print(f"--- {name} log ---\n" + c.log(name))
        for name, p in c.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        c.close()


run(main)
