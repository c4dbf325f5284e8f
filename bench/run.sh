#!/usr/bin/env bash
# Prints every throughput figure of the project, one per line, for the
# machine it runs on. Build first (scripts/build.sh).
#   bash bench/run.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
[ -x build/bench/bench_compose ] && build/bench/bench_compose
build/bench/bench_encoders 150 1920x1080 2>/dev/null
build/bench/bench_pipeline "$secs" veryfast 1920x1080
bash bench/ffmpeg_baseline.sh "$secs" veryfast 1920x1080
