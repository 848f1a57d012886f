#!/usr/bin/env bash
# Builds muonrec and runs the whole test suite (GPU tests skip with a message where no GPU is
# visible), then builds and runs the find_package example against an installed copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${MUONREC_BUILD_DIR:-$root/build}
"$root/tools/setup.sh" "$build"
ctest --test-dir "$build" --output-on-failure -j"${MUONREC_JOBS:-2}"

prefix="$build/install-check"
cmake --install "$build" --prefix "$prefix" >/dev/null
cmake -S "$root/examples/link_engine" -B "$build/example-link" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$build/example-link" -j"${MUONREC_JOBS:-2}" >/dev/null
"$build/example-link/link_engine" | tail -n 1
echo "example: find_package(muonrec) build and run OK"
