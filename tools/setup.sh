#!/usr/bin/env bash
# Installs the Debian packages muonrec builds with, then configures and builds it.
# Usage: tools/setup.sh [build-dir]   (CUDA is used when nvcc is found; MUONREC_CUDA=OFF forces CPU)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
packages=(cmake ninja-build g++ libfmt-dev libgtest-dev libopenblas-dev libcli11-dev nlohmann-json3-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
jobs=${MUONREC_JOBS:-2}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMUONREC_CUDA="${MUONREC_CUDA:-AUTO}" \
  ${CMAKE_CUDA_ARCHITECTURES:+-DCMAKE_CUDA_ARCHITECTURES=$CMAKE_CUDA_ARCHITECTURES}
cmake --build "$build" -j"$jobs"
