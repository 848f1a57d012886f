#!/usr/bin/env bash
# Sets everything up and trains SASRec on the built-in synthetic dataset (a few minutes on 2 CPU
# cores), printing progress, validation metrics, test metrics and the most-popular baseline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/tools/setup.sh" "$root/build"
exec "$root/build/tools/muonrec" train --data synthetic --maxlen 50 --epochs 20 --eval-every 5 --lr 2e-3 \
  --metrics "$root/build/quickstart_metrics.jsonl" --checkpoint "$root/build/quickstart.safetensors" --baseline "$@"
