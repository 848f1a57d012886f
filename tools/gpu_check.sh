#!/usr/bin/env bash
# On the GPU machine (see .library device README): build for sm_90, run the whole test suite,
# compute-sanitizer on the GPU tests, the benchmarks against the PyTorch peer, and optionally
# training runs. Stages:
#   tools/gpu_check.sh [build] [tests] [sanitize] [bench] [models] [train-sasrec] [train-hstu] [train-tiger]
#                      [e2e] [large] [steps] [profile]
#   (default: build tests sanitize bench; training reads MUONREC_EPOCHS/BLOCKS/HEADS/OPTIM/MATMUL)
# Every log goes to build-gpu/logs. $OUT (default build-gpu/out) gets few files, as the device tool
# returns only a handful: summary.txt (a line per step, written as it goes), the benchmark tables,
# and gpu_check_logs.tgz (every log), refreshed after each stage, so a call cut off at its time limit
# keeps what came before. Each command runs under a time limit of its own (a hung test cannot take
# the whole call). A machine is fresh after a short idle time: begin every call with `build` (a few
# seconds where build-gpu is already built). Three calls of under 10 minutes each:
#   build tests sanitize | build models steps bench | build e2e large
# Reads fixtures, data and torch_ref.py from $MUONREC_SHARED (default: .shared, which stage_shared.sh
# fills for the device tool, where it exists, else ../shared beside the repository).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -z "${MUONREC_SHARED:-}" ]; then
  MUONREC_SHARED=$root/.shared
  [ -d "$MUONREC_SHARED" ] || MUONREC_SHARED=$root/../shared
fi
[ -d "$MUONREC_SHARED" ] ||
  echo "warning: no shared folder at $MUONREC_SHARED: fixture and dataset tests fail, as do data stages" >&2
# A fixture or dataset that staging missed fails its test here, as in CI, instead of skipping it unseen.
export MUONREC_SHARED MUONREC_REQUIRE_SHARED=${MUONREC_REQUIRE_SHARED:-1}
build=$root/build-gpu
muonrec=$build/tools/muonrec
ml1m=$MUONREC_SHARED/data/ml-1m/ml-1m.txt
beauty=$MUONREC_SHARED/data/beauty/Beauty.txt
logs=$build/logs
out=${OUT:-$build/out}
mkdir -p "$logs" "$out"
: > "$out/summary.txt"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build tests sanitize bench)
# The README's best TIGER setting (co-occurrence item vectors of width 256, d 128, ff 512; AdamW's rate, cosine).
tiger_flags="--item-vectors cooccurrence --sid-width 256 --sid-levels 3 --sid-codebook 256 --sid-history 20 --beam 20 --d 128 \
  --blocks 2 --heads 2 --ff 512 --dropout 0.1 --batch 256 --adam-lr 3e-3 --schedule cosine --warmup-steps 100"
# Muon's rate, for the runs with --optim muon (the AdamW runs refuse Muon's flags).
muon_flags() { [ "$1" = muon ] && echo "--muon-lr 0.02"; }
note() { echo "$*" >> "$out/summary.txt"; echo "== $*"; }  # its arguments, as one line
# The command after the limit in seconds; exit 124 when it ran out of time.
limited() { local seconds=$1; shift; timeout -k 10 "$seconds" "$@"; }
# Copies the tables and the logs so far to $out.
publish() {
  for table in micro_table.md e2e_table.md; do [ -f "$logs/$table" ] && cp "$logs/$table" "$out/"; done
  tar czf "$out/gpu_check_logs.tgz" -C "$logs" .
}
# False, with a note, when the build stage has not made the binary $1 (a fresh machine: build first).
built() { [ -x "$1" ] || { note "missing $1: run the build stage first in this call"; return 1; }; }
joined_lines() { grep -E "$1" "$2" | tr '\n' ' '; }  # the lines of file $2 matching $1, on one line

for stage in "${stages[@]}"; do
  case "$stage" in
    build)
      cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMUONREC_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
        > "$logs/configure.log" 2>&1 && limited 420 cmake --build "$build" -j16 -- -k 0 > "$logs/build.log" 2>&1
      note "build: exit $? ($(grep -c 'error' "$logs/build.log") error lines)"
      ;;
    tests)
      limited 360 ctest --test-dir "$build" -j8 --timeout 180 --output-on-failure > "$logs/ctest.log" 2>&1
      note "tests: exit $? | $(grep -E 'tests passed|tests failed' "$logs/ctest.log" | tail -1);" \
        "skipped: $(grep -c '\*\*\*Skipped' "$logs/ctest.log")"
      grep -E '\*\*\*(Failed|Exception|Timeout)|\(Failed\)|\(Timeout\)' "$logs/ctest.log" | head -20 \
        >> "$out/summary.txt"
      ;;
    sanitize)
      # The kernel tests first; then the GPU paths of the models, TIGER and RQ-VAE (slower under memcheck).
      for t in test_kernels_gpu test_ops test_hstu test_optim test_engine test_models test_training test_tiger \
        test_semantic_id; do
        built "$build/tests/$t" || continue
        limited 240 compute-sanitizer --tool memcheck --error-exitcode 3 "$build/tests/$t" \
          --gtest_filter='*Gpu*:*GPU*:*gpu*' > "$logs/sanitize_$t.log" 2>&1
        note "compute-sanitizer memcheck $t: exit $?" \
          "($(grep -c 'ERROR SUMMARY: 0 errors' "$logs/sanitize_$t.log") clean summaries)"
        publish
      done
      ;;
    bench)
      built "$build/bench/bench_ops" || continue
      # A crashed or timed-out (124) benchmark shows as its exit code, not only as missing rows.
      limited 180 "$build/bench/bench_optim" --device cuda > "$logs/micro_muonrec.jsonl" 2> "$logs/bench_optim.err"
      optim_status=$?
      limited 180 "$build/bench/bench_ops" --device cuda >> "$logs/micro_muonrec.jsonl" 2> "$logs/bench_ops.err"
      ops_status=$?
      limited 180 python3 "$MUONREC_SHARED/bench/torch_ref.py" --micro > "$logs/micro_torch.jsonl" \
        2> "$logs/torch_micro.err"
      torch_status=$?
      python3 bench/compare.py "$logs/micro_muonrec.jsonl" "$logs/micro_torch.jsonl" --markdown \
        | tee "$logs/micro_table.md"
      note "bench: exit bench_optim $optim_status, bench_ops $ops_status, torch_ref $torch_status, compare" \
        "${PIPESTATUS[0]} | $(wc -l < "$logs/micro_muonrec.jsonl") muonrec rows," \
        "$(wc -l < "$logs/micro_torch.jsonl") torch rows"
      ;;
    models)
      # Every model with each optimizer on the GPU, briefly: sasrec, bert4rec and hstu on ML-1M (3
      # epochs), tiger on Beauty (2 epochs, 2000 sampled users; the encoder-decoder 1 epoch); each line
      # gives the test metrics.
      built "$muonrec" || continue
      for optim in adamw muon; do
        for model in sasrec bert4rec hstu; do
          limited 240 "$muonrec" train --model "$model" --data "$ml1m" --d 64 \
            --blocks 2 --heads 1 --maxlen 200 --dropout 0.2 --optim "$optim" --epochs 3 --eval-every 3 --device cuda \
            > "$logs/models_${model}_$optim.log" 2>&1
          note "$model $optim (GPU, 3 epochs): exit $? | $(grep -E '^test at that epoch' "$logs/models_${model}_$optim.log")"
        done
        limited 240 "$muonrec" train --model tiger --data "$beauty" $tiger_flags \
          --optim "$optim" $(muon_flags "$optim") --epochs 2 --eval-every 2 --valid-users 2000 --test-users 2000 --device cuda \
          > "$logs/models_tiger_$optim.log" 2>&1
        note "tiger $optim (GPU, 2 epochs): exit $? | $(grep -E 'test \(best validation\)' "$logs/models_tiger_$optim.log")"
      done
      limited 240 "$muonrec" train --model tiger --data "$beauty" $tiger_flags \
        --encoder-blocks 2 --optim muon --muon-lr 0.02 --epochs 1 --eval-every 1 --valid-users 2000 --test-users 2000 --device cuda \
        > "$logs/models_tiger_encoder_decoder.log" 2>&1
      note "tiger encoder-decoder muon (GPU, 1 epoch): exit $? | $(grep -E 'test \(best validation\)' "$logs/models_tiger_encoder_decoder.log")"
      limited 240 "$muonrec" train --model tiger --data "$beauty" $tiger_flags \
        --sid-tokenizer rq-vae --rqvae-epochs 50 --optim muon --muon-lr 0.02 --epochs 1 --eval-every 1 \
        --valid-users 2000 --test-users 2000 --device cuda > "$logs/models_tiger_rq_vae.log" 2>&1
      status=$?
      tokenizer_line=$(grep -E '^semantic IDs' "$logs/models_tiger_rq_vae.log" | cut -c1-120)
      note "tiger rq-vae tokenizer (GPU, 50 + 1 epochs): exit $status | $tokenizer_line"
      ;;
    train-tiger)
      # The README's best TIGER row on Beauty (24 epochs, every test user), with MUONREC_OPTIM
      # (MUONREC_ENCODER_BLOCKS=N: the encoder-decoder).
      built "$muonrec" || continue
      optim=${MUONREC_OPTIM:-muon} encoder=${MUONREC_ENCODER_BLOCKS:-0}
      run=beauty_tiger_${optim}_E${encoder}
      "$muonrec" train --model tiger --data "$beauty" $tiger_flags \
        --encoder-blocks "$encoder" --optim "$optim" $(muon_flags "$optim") --epochs "${MUONREC_EPOCHS:-24}" --eval-every 2 \
        --valid-users 2000 --device cuda --metrics "$logs/$run.jsonl" > "$logs/$run.log" 2>&1
      note "$run: exit $? | $(grep -E 'test \(best validation\)' "$logs/$run.log") | $(grep -E '^training time' "$logs/$run.log")"
      ;;
    train-sasrec|train-hstu)
      built "$muonrec" || continue
      model=${stage#train-}
      epochs=${MUONREC_EPOCHS:-160} blocks=${MUONREC_BLOCKS:-2} heads=${MUONREC_HEADS:-1} optim=${MUONREC_OPTIM:-adamw}
      run=ml1m_${model}_L${blocks}H${heads}_${optim}_${MUONREC_MATMUL:-fp32}
      "$muonrec" train --model "$model" --data "$ml1m" --d 64 --blocks "$blocks" \
        --heads "$heads" --maxlen 200 --batch 128 --dropout 0.2 --lr 1e-3 --optim "$optim" --epochs "$epochs" \
        --eval-every 5 --device cuda --matmul-precision "${MUONREC_MATMUL:-fp32}" --metrics "$logs/$run.jsonl" \
        > "$logs/$run.log" 2>&1
      note "train $run ($epochs epochs): $(grep -E '^test at that epoch' "$logs/$run.log") | $(grep -E '^training time' "$logs/$run.log")"
      ;;
    e2e)
      # Our training and the PyTorch peer's on ML-1M, same settings, one GPU: seconds per epoch.
      built "$muonrec" || continue
      limited 540 python3 bench/e2e.py --muonrec "$muonrec" --peer "$MUONREC_SHARED/bench/torch_ref.py" \
        --data "$ml1m" --epochs "${MUONREC_EPOCHS:-10}" --optim "${MUONREC_OPTIM:-adamw}" \
        --matmul-precision "${MUONREC_MATMUL:-fp32,bf16}" --out "$logs/e2e" --markdown | tee "$logs/e2e_table.md"
      note "e2e: $(tail -n +3 "$logs/e2e_table.md" | tr '\n' ' ')"
      ;;
    large)
      # Larger models on a 100,000-item synthetic catalogue: d=256, 8 blocks, 4 heads, T=200; fits
      # on one GPU, and the log reports tokens/s.
      built "$muonrec" || continue
      for model in sasrec hstu; do
        limited 240 "$muonrec" train --model "$model" --data synthetic --synthetic-users 20000 --synthetic-items 100000 \
          --d 256 --blocks 8 --heads 4 --maxlen 200 --batch 128 --epochs 2 --eval-every 2 --device cuda \
          --matmul-precision "${MUONREC_MATMUL:-fp32}" > "$logs/large_$model.log" 2>&1
        note "large $model d=256 L=8 H=4 V=100k: exit $? | $(grep -E '^training time' "$logs/large_$model.log")"
        # The same shapes as timed steps: phases and peak tensor memory (full windows: an upper bound).
        log=$logs/bench_large_$model.log
        limited 180 "$muonrec" bench --model "$model" --items 100000 --d 256 --blocks 8 --heads 4 --maxlen 200 \
          --batch 128 --device cuda --matmul-precision "${MUONREC_MATMUL:-fp32}" > "$log" 2>&1
        note "bench $model d=256 L=8 H=4 V=100k: exit $? | $(joined_lines '^(step|phases|peak)' "$log")"
      done
      ;;
    steps)
      # `muonrec bench` on the ML-1M shapes of reference/PERF.md (d=64, 2 blocks, T=200, batch 128,
      # 3,416 items): milliseconds per step and per phase, fp32 and bf16 products; then TIGER.
      built "$muonrec" || continue
      for model in sasrec hstu; do
        for precision in fp32 bf16; do
          log=$logs/steps_${model}_$precision.log
          limited 180 "$muonrec" bench --model "$model" --steps 50 --device cuda --matmul-precision "$precision" \
            > "$log" 2>&1
          note "steps $model $precision: exit $? | $(joined_lines '^(step|phases)' "$log")"
        done
      done
      # TIGER with the model shape of the README's best Beauty run (12,101 items, codes 3 x 256, 20
      # history items, d 128, ff 512), under AdamW and under Muon.
      for optim in adamw muon; do
        log=$logs/steps_tiger_$optim.log
        limited 180 "$muonrec" bench --model tiger --items 12101 --d 128 --blocks 2 --heads 2 --ff 512 --dropout 0.1 \
          --batch 256 --steps 50 --optim "$optim" --device cuda > "$log" 2>&1
        note "steps tiger $optim fp32: exit $? | $(joined_lines '^(step|phases)' "$log")"
      done
      ;;
    profile)
      # Kernel time breakdown of a window of SASRec and HSTU training steps (Nsight Compute: each
      # kernel's duration, summed per kernel name; the window skips start-up and the first steps).
      built "$muonrec" || continue
      for model in sasrec hstu; do
        limited 300 ncu --clock-control none --launch-skip 3000 --launch-count 600 --metrics gpu__time_duration.sum --csv \
          "$muonrec" train --model "$model" --data "$ml1m" --epochs 1 \
          --eval-every 100 --device cuda > "$logs/ncu_$model.csv" 2> "$logs/ncu_$model.err"
        note "profile $model: exit $? (ncu_$model.csv)"
        python3 bench/kernel_summary.py "$logs/ncu_$model.csv" | head -25
      done
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
  publish
done
cat "$out/summary.txt"
