#!/usr/bin/env bash
# The ffmpeg command line doing comparable work to one agent unit: a styled
# background, a drawtext title card, timed drawtext captions, espeak-ng
# narration, x264 + AAC into mp4 with faststart. Prints frames/s.
#   ffmpeg_baseline.sh [seconds] [preset] [WxH]
set -euo pipefail
secs=${1:-20}
preset=${2:-veryfast}
size=${3:-1920x1080}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
script="Most of us lose an hour a day to small tasks. Let software draft your emails, summarise long threads, and plan your week."

# The background is drawn once (as the agent does) and looped.
ffmpeg -nostdin -v error -y -f lavfi -i "gradients=s=$size:c0=0x1E1B4B:c1=0x7C3AED:d=1" \
    -frames:v 1 "$tmp/bg.png"
start=$(date +%s.%N)
espeak-ng -v en-us+f3 -w "$tmp/narration.wav" "$script"
ffmpeg -nostdin -v error -y \
    -loop 1 -framerate 30 -i "$tmp/bg.png" \
    -i "$tmp/narration.wav" \
    -filter_complex "[0:v]drawtext=fontfile=$font:text='How to improve productivity':fontcolor=white:fontsize=96:x=(w-tw)/2:y=(h-th)/2:enable='lt(t,2)',drawtext=fontfile=$font:text='Most of us lose an hour a day':fontcolor=white:fontsize=56:box=1:boxcolor=black@0.5:x=(w-tw)/2:y=h*0.8:enable='between(t,2,5)',drawtext=fontfile=$font:text='Let software draft your emails':fontcolor=white:fontsize=56:box=1:boxcolor=black@0.5:x=(w-tw)/2:y=h*0.8:enable='between(t,5,8)',format=yuv420p[v];[1:a]adelay=2000|2000,aresample=48000,apad[a]" \
    -map "[v]" -map "[a]" -t "$secs" -r 30 -c:v libx264 -preset "$preset" -profile:v high \
    -g 60 -c:a aac -b:a 160k -ac 2 -movflags +faststart "$tmp/out.mp4"
end=$(date +%s.%N)
frames=$((secs * 30))
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'ffmpeg cli {sys.argv[4]} {sys.argv[5]}: {int(sys.argv[3])} frames in {s*1000:.0f} ms: {int(sys.argv[3])/s:.1f} frames/s')" "$start" "$end" "$frames" "$size" "$preset"
