#!/bin/sh
# run_fuzz.sh FUZZER SEED_DIR WORK_DIR SECONDS
# Runs a libFuzzer binary for a bounded time on a copy of the checked-in
# seeds, so new corpus entries land in the build tree, not the source tree.
set -eu
fuzzer=$1
seeds=$2
work=$3
secs=$4
rm -rf "$work"
mkdir -p "$work"
cp "$seeds"/* "$work"/
exec "$fuzzer" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work"
