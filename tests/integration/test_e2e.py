"""End to end: a coordinator and an agent as real processes on 127.0.0.1
render a 3-row CSV job. The two good rows become videos a platform accepts
as they are; the row without a script fails alone with a clear reason."""
import hashlib
import os
import re
import subprocess

from harness import Cluster, check, decode_errors, ffprobe, run, write_csv

ROWS = [
    {"idea_title": "Morning focus routine", "description": "Three habits for a clear head",
     "target_audience": "students", "tone": "friendly", "duration_seconds": "7",
     "platform_preferences": "youtube", "script_content": "Drink water. Plan one task. Begin.",
     "voice_preference": "female", "style_override": "modern", "priority": "high"},
    {"idea_title": "Missing script row", "description": "This row has no script",
     "duration_seconds": "5", "platform_preferences": "youtube"},
    {"idea_title": "Café owners’ guide — 3 tips", "description": "Small shop, big results",
     "target_audience": "shop owners", "tone": "upbeat", "duration_seconds": "9",
     "platform_preferences": "youtube,tiktok",
     "script_content": "Greet every guest by name. Keep the menu short. Ask for a review.",
     "voice_preference": "male", "style_override": "classic", "priority": "normal"},
]
SIZES = {"youtube": (1280, 720), "tiktok": (720, 1280)}


def top_level_boxes(path):
    boxes = []
    with open(path, "rb") as f:
        while True:
            hdr = f.read(8)
            if len(hdr) < 8:
                break
            size = int.from_bytes(hdr[:4], "big")
            kind = hdr[4:8].decode("latin-1")
            if size == 1:
                size = int.from_bytes(f.read(8), "big")
                f.seek(size - 16, 1)
            elif size == 0:
                boxes.append(kind)
                break
            else:
                f.seek(size - 8, 1)
            boxes.append(kind)
    return boxes


def keyframe_times(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=pts_time,flags", "-of", "csv=p=0", path],
                         capture_output=True, text=True, timeout=60)
    times = []
    for line in out.stdout.split():
        t, flags = line.split(",", 1)
        if "K" in flags:
            times.append(float(t))
    return times


def loudness(path):
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "info", "-i", path, "-map", "0:a",
                          "-af", "ebur128=peak=true", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120)
    summary = out.stderr[out.stderr.rfind("Summary:"):]
    i = float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1))
    tp = float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1))
    return i, tp


def check_video(path, art, width, height, seconds):
    check(os.path.isfile(path), f"missing output {path}")
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    check(digest == art["sha256"], f"{path}: sha256 {digest} != reported {art['sha256']}")
    check(os.path.getsize(path) == art["size_bytes"], f"{path}: size differs from the report")
    info = ffprobe(path)
    v = [s for s in info["streams"] if s["codec_type"] == "video"]
    a = [s for s in info["streams"] if s["codec_type"] == "audio"]
    check(len(v) == 1 and len(a) == 1, f"{path}: expected one video and one audio stream")
    v, a = v[0], a[0]
    check(v["codec_name"] == "h264", f"{path}: video codec {v['codec_name']}")
    check(v.get("profile") == "High", f"{path}: profile {v.get('profile')}")
    check(v["pix_fmt"] == "yuv420p", f"{path}: pix_fmt {v['pix_fmt']}")
    for k in ("color_space", "color_transfer", "color_primaries"):
        check(v.get(k) == "bt709", f"{path}: {k} {v.get(k)}")
    check((v["width"], v["height"]) == (width, height),
          f"{path}: {v['width']}x{v['height']}, expected {width}x{height}")
    check(v["r_frame_rate"] == "30/1" and v["avg_frame_rate"] == "30/1",
          f"{path}: frame rate {v['r_frame_rate']} / {v['avg_frame_rate']}")
    check(a["codec_name"] == "aac" and a.get("profile") == "LC", f"{path}: audio {a}")
    check(int(a["sample_rate"]) == 48000 and a["channels"] == 2, f"{path}: audio {a}")
    dur = float(info["format"]["duration"])
    check(abs(dur - seconds) <= 0.5, f"{path}: duration {dur}, expected {seconds} ± 0.5")
    vd, ad = float(v["duration"]), float(a["duration"])
    check(abs(vd - ad) <= 1 / 30 + 1e-3, f"{path}: video {vd} s vs audio {ad} s")
    boxes = top_level_boxes(path)
    check("moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat"),
          f"{path}: box order {boxes} (faststart wants moov before mdat)")
    keys = keyframe_times(path)
    check(keys and keys[0] == 0.0, f"{path}: first packet is not a keyframe")
    gaps = [b - a for a, b in zip(keys, keys[1:] + [vd])]
    check(max(gaps) <= 2.0 + 1e-3, f"{path}: keyframe gap {max(gaps):.3f} s > 2 s")
    i, tp = loudness(path)
    check(abs(i - (-14.0)) <= 1.5, f"{path}: integrated loudness {i} LUFS, want about -14")
    check(tp <= -1.0, f"{path}: true peak {tp} dBTP > -1")
    errs = decode_errors(path)
    check(errs == "", f"{path}: decode errors: {errs}")


def main(a):
    c = Cluster(a.build)
    ok = False
    try:
        csv_path = os.path.join(c.dir, "sheet.csv")
        write_csv(csv_path, ROWS)
        c.start_agent("agent-1")
        req = {"title": "E2E CSV job", "priority": "normal",
               "input_source": {"type": "csv", "path": csv_path},
               "output": {"format": "mp4", "video_codec": "h264", "audio_codec": "aac",
                          "resolution": "720p", "output_bucket": "e2e-bucket"},
               "template": {"template_id": "tpl_standard"}}
        code, job = c.post("/api/v1/bulk-jobs", req)
        check(code == 201, f"create: {code} {job}")
        for k in ("id", "state", "percent_complete", "items_total", "items_completed",
                  "items_failed", "items_pending", "created_at"):
            check(k in job, f"create response lacks {k}: {job}")
        check(job["items_total"] == 3, f"items_total {job['items_total']}")
        check(job["state"] in ("pending", "running"), f"state {job['state']}")

        # The user guide's envelope on the other path style.
        code, env = c.get(f"/api/bulk-jobs/{job['id']}")
        check(code == 200 and env.get("success") is True and env["data"]["id"] == job["id"],
              f"/api/bulk-jobs envelope: {code} {env}")

        done = c.wait_job(job["id"], timeout=400)
        check(done["state"] == "completed", f"job ended {done['state']}: {done}")
        check(done["items_completed"] == 2 and done["items_failed"] == 1,
              f"counters: {done}")
        check(done["percent_complete"] == 100, f"percent {done['percent_complete']}")

        vids = {v["row_number"]: v for v in c.videos(job["id"])}
        check(sorted(vids) == [2, 3, 4], f"rows {sorted(vids)}")
        bad = vids[3]
        check(bad["state"] == "failed", f"row 3 state {bad['state']}")
        check(bad["errors"] and bad["errors"][0]["error_code"] == "validation_error",
              f"row 3 errors {bad['errors']}")
        msg = bad["errors"][0]["error_message"]
        check("script_content" in msg and "3" in msg, f"row 3 reason is unclear: {msg}")

        expected = {2: ["youtube"], 4: ["youtube", "tiktok"]}
        for row, rends in expected.items():
            v = vids[row]
            check(v["state"] == "completed", f"row {row}: {v}")
            arts = {x["rendition"]: x for x in v["artifacts"] if x["type"] == "video"}
            check(sorted(arts) == sorted(rends), f"row {row} renditions {sorted(arts)}")
            seconds = float(ROWS[row - 2]["duration_seconds"])
            for r in rends:
                w, h = SIZES[r]
                check_video(arts[r]["path"], arts[r], w, h, seconds)
                check(arts[r]["url"].startswith("file://"), f"url {arts[r]['url']}")

        files = []
        for dirpath, _, names in os.walk(c.bucket_root):
            files += [os.path.join(dirpath, n) for n in names]
        videos = [f for f in files if f.endswith(".mp4")]
        check(len(videos) == 3, f"expected exactly 3 videos in the bucket, found {files}")
        check(not any(".part-" in f for f in files), f"partial files left: {files}")
        for f in videos:
            base = f[:-len(".mp4")]
            check(base + ".jpg" in files and base + ".vtt" in files,
                  f"{f}: poster or captions missing")
            with open(base + ".vtt", encoding="utf-8") as vtt:
                text = vtt.read()
            check(text.startswith("WEBVTT\n") and " --> " in text, f"{base}.vtt is not WebVTT")
        ok = True
    finally:
        if not ok:
            print("--- coordinator log ---\n" + c.log("coordinator"))
            print("--- agent log ---\n" + c.log("agent-1"))
        c.close()


run(main)
