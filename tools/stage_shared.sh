#!/usr/bin/env bash
# Copies what a GPU run needs from ../shared into the repository's ignored .shared/ folder, so the
# device tool can carry it (carry: [".shared"]): the fixtures, the PyTorch peer, ML-1M (the SASRec
# file, and movies.dat with its item map for the movie-title tests), MovieLens-small and Beauty. Never commit .shared/ (dataset licenses forbid it; it is ignored).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${MUONREC_SHARED_SOURCE:-$root/../shared}
dst=$root/.shared
mkdir -p "$dst/fixtures" "$dst/bench" "$dst/data/ml-1m" "$dst/data/ml-latest-small" "$dst/data/beauty"
cp "$src"/fixtures/*.safetensors "$dst/fixtures/"
cp "$src/bench/torch_ref.py" "$dst/bench/"
cp "$src"/data/ml-1m/{ml-1m.txt,movies.dat,sas_to_original_items.txt} "$dst/data/ml-1m/"
cp "$src/data/ml-latest-small/ratings.csv" "$dst/data/ml-latest-small/"
cp "$src"/data/beauty/*.txt "$dst/data/beauty/"
du -sh "$dst"
