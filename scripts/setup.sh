#!/usr/bin/env bash
# Installs every Debian package the build, the demo and the tests need.
# Safe to run again: apt-get skips what is already installed.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config git ca-certificates clang clang-format
    libclang-rt-14-dev
    ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswresample-dev libswscale-dev
    libnng-dev libmsgpack-dev libsqlite3-dev sqlite3 libcurl4-openssl-dev libssl-dev
    libcivetweb-dev libjansson-dev libjwt-dev
    libpango1.0-dev libcairo2-dev fonts-dejavu-core fonts-noto-core fonts-noto-cjk
    fonts-noto-color-emoji
    espeak-ng libespeak-ng-dev libebur128-dev
    libsystemd-dev libcmocka-dev
    python3 python3-requests curl
    python3-websocket node-ws
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: all ${#pkgs[@]} packages already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
