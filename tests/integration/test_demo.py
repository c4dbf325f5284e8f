"""The README's main command, scripts/demo.sh, on the tree ctest has built
(its set-up and build steps skipped), on free ports and a fresh data
directory: it exits 0, the job completes, and every video path it prints is
a real 1080p-class file that ffprobe reads and ffmpeg decodes cleanly."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import SKIP, check, decode_errors, ffprobe, free_port, run


def main(a):
    build = os.path.abspath(a.build)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    built = os.path.join(src, "build")
    if not os.path.isdir(built) or not os.path.samefile(build, built):
        print(f"SKIP: demo.sh runs the binaries in <source>/build, not {build}")
        sys.exit(SKIP)
    data = tempfile.mkdtemp(prefix="rf-demo-")
    ok = False
    try:
        env = dict(os.environ, RF_DEMO_NO_SETUP="1", RF_DEMO_DATA=data,
                   RF_DEMO_HTTP_PORT=str(free_port()), RF_DEMO_NNG_PORT=str(free_port()))
        p = subprocess.run(["bash", os.path.join(src, "scripts", "demo.sh")], env=env,
                           capture_output=True, text=True, timeout=540)
        out = p.stdout + p.stderr
        check(p.returncode == 0, f"demo.sh exited {p.returncode}:\n{out[-4000:]}")
        check(re.search(r"demo: job job_\w+ completed", out), f"no completed job:\n{out[-3000:]}")
        paths = re.findall(r"^\s+row\s+\d+\s+\S+\s+(\d+)x(\d+)\s+\S+\s+(\S+\.mp4)$", out, re.M)
        check(len(paths) >= 4, f"fewer videos than rows printed:\n{out[-3000:]}")
        for w, h, path in paths:
            check(path.startswith(data), f"{path} is outside the demo's data directory")
            info = ffprobe(path)
            v = [s for s in info["streams"] if s["codec_type"] == "video"][0]
            check((v["width"], v["height"]) == (int(w), int(h)), f"{path}: {v}")
            check(min(int(w), int(h)) == 1080, f"{path}: not 1080p-class")
            check(any(s["codec_type"] == "audio" for s in info["streams"]), f"{path}: no audio")
            check(not decode_errors(path), f"{path} does not decode cleanly")
        print(f"ok: demo.sh rendered {len(paths)} videos")
        ok = True
    finally:
        if ok:
            shutil.rmtree(data, ignore_errors=True)
        else:
            print(f"demo data kept in {data}")


if __name__ == "__main__":
    run(main)
