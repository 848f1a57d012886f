#!/usr/bin/env bash
# On the GPU machine, in one command: build, time our optimizers and the PyTorch peer's on the same
# shapes, print the ratio table (markdown, for docs/RESULTS.md). Needs torch_ref.py: from
# $MUONREC_SHARED/bench, default ../shared/bench (copy it into the repo's ignored .shared/ folder
# to carry it to a remote machine).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${MUONREC_SHARED:-$root/../shared}
build=${MUONREC_BUILD_DIR:-$root/build}
out=${OUT:-$build/bench-out}
mkdir -p "$out"
cmake --build "$build" --target bench_optim bench_ops -j"${MUONREC_JOBS:-16}" >/dev/null
{ "$build/bench/bench_optim" --device cuda; "$build/bench/bench_ops" --device cuda; } | tee "$out/optim_muonrec.jsonl"
python3 "$shared/bench/torch_ref.py" --micro | tee "$out/optim_torch.jsonl"
python3 "$root/bench/compare.py" "$out/optim_muonrec.jsonl" "$out/optim_torch.jsonl" --markdown | tee "$out/optim_table.md"
