#!/usr/bin/env bash
# The main job, end to end on this machine: installs, builds, starts a
# coordinator and one local agent, submits examples/sheet.csv as a bulk job,
# shows its progress, and prints where the videos are. Safe to run again:
# each run is a new job in the same demo-data/ store.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
HTTP_PORT=${RF_DEMO_HTTP_PORT:-18080}
NNG_PORT=${RF_DEMO_NNG_PORT:-15555}
data=${RF_DEMO_DATA:-"$root/demo-data"}
sheet="$root/examples/sheet.csv"
start=$(date +%s)

# The test of this script (it_demo) runs it on a tree ctest has just built.
if [ "${RF_DEMO_NO_SETUP:-0}" != 1 ]; then
    bash scripts/setup.sh
    bash scripts/build.sh
fi
mkdir -p "$data/logs"

for port in "$HTTP_PORT" "$NNG_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "demo: port $port is already in use; set RF_DEMO_HTTP_PORT / RF_DEMO_NNG_PORT" >&2
        exit 1
    fi
done

# A bearer token for this run: the coordinator verifies HS256 tokens signed
# with the secret in demo-data/jwt-secret (made once, kept private).
secret_file="$data/jwt-secret"
if [ ! -s "$secret_file" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '\n' >"$secret_file")
fi
token=$(build/coordinator/coordinator mint-token --jwt-secret-file "$secret_file" \
    --sub demo-user --tenant demo --ttl 7200)
export RF_TOKEN="$token"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

build/coordinator/coordinator --http-listen "127.0.0.1:$HTTP_PORT" \
    --nng-listen "tcp://127.0.0.1:$NNG_PORT" --db-path "$data/renderfarm.db" \
    --bucket-root "$data/buckets" --jwt-secret-file "$secret_file" \
    >"$data/logs/coordinator.log" 2>&1 &
pids+=($!)
build/agent/agent --coordinator "tcp://127.0.0.1:$NNG_PORT" --agent-id demo-agent \
    >"$data/logs/agent.log" 2>&1 &
pids+=($!)

api="http://127.0.0.1:$HTTP_PORT/api/v1"
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

body=$(python3 - "$sheet" <<'PY'
import json, sys
print(json.dumps({
    "title": "Example sheet",
    "priority": "normal",
    "input_source": {"type": "csv", "path": sys.argv[1]},
    "output": {"format": "mp4", "video_codec": "h264", "audio_codec": "aac",
               "resolution": "1080p", "output_bucket": "demo-videos"},
    "template": {"template_id": "tpl_standard"},
}))
PY
)
job=$(curl -fsS -X POST "$api/bulk-jobs" -H 'Content-Type: application/json' \
    -H "Authorization: Bearer $token" -H "Idempotency-Key: demo-$(date +%s%N)" -d "$body")
job_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$job")
echo "demo: job $job_id created from $sheet"

status=0
python3 - "$api" "$job_id" <<'PY' || status=$?
import json, os, sys, time, urllib.error, urllib.request
api, job_id = sys.argv[1], sys.argv[2]
def get(path):
    req = urllib.request.Request(f"{api}{path}",
                                 headers={"Authorization": f"Bearer {os.environ['RF_TOKEN']}"})
    for _ in range(10):
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code != 429:  # over the rate limit: wait as told, then ask again
                raise
            time.sleep(int(e.headers.get("Retry-After", "1")))
    raise SystemExit("demo: rate limited for too long")
deadline = time.time() + 1800
last = None
while time.time() < deadline:
    p = get(f"/bulk-jobs/{job_id}/progress")
    s = p["items_status"]
    pct = p["percent_complete"] or 0
    bar = "#" * int(pct / 4) + "-" * (25 - int(pct / 4))
    eta = p["timing"].get("eta_ms")
    eta_s = f" eta {eta / 1000:.0f}s" if eta else ""
    line = (f"[{bar}] {pct:5.1f}%  {s['completed']} done, {s['failed']} failed, "
            f"{s['pending']} pending  ({p['state']}){eta_s}")
    if sys.stdout.isatty():
        print(f"\r{line}   ", end="", flush=True)
    elif line.split(" eta")[0] != last:
        print(line, flush=True)
    last = line.split(" eta")[0]
    if p["state"] in ("completed", "failed", "canceled"):
        break
    time.sleep(2)
print()
for v in get(f"/bulk-jobs/{job_id}/videos?page_size=100")["videos"]:
    if v["state"] == "completed":
        for a in (x for x in v["artifacts"] if x["type"] == "video"):
            print(f"  row {v['row_number']:>3}  {a['rendition']:<9} {a['width']}x{a['height']}  "
                  f"{a['duration_ms'] / 1000:.1f}s  {a['path']}")
    else:
        errs = "; ".join(e["error_message"] for e in v.get("errors", []))
        print(f"  row {v['row_number']:>3}  {v['state']}: {errs}")
job = get(f"/bulk-jobs/{job_id}")
print(f"demo: job {job_id} {job['state']}")
sys.exit(0 if job["state"] == "completed" else 1)
PY
echo "demo: videos are under $data/buckets/demo-videos/$job_id/ (logs in $data/logs/)"
echo "demo: wall time $(( $(date +%s) - start )) s"
exit $status
