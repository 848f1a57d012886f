#!/usr/bin/env bash
# On the GPU machine (see .library device README): build for sm_90, run the whole test suite,
# compute-sanitizer on the GPU kernel tests, the benchmarks against the PyTorch peer, and
# optionally a training run; logs and tables land in $OUT (default build-gpu/out). Stages:
#   tools/gpu_check.sh [build] [tests] [sanitize] [bench] [models] [train-sasrec] [train-hstu] [train-tiger]
#                      [e2e] [large] [steps] [profile]
#   (default: build tests sanitize bench; training reads MUONREC_EPOCHS/BLOCKS/HEADS/OPTIM/MATMUL)
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
  echo "warning: no shared folder at $MUONREC_SHARED: fixture tests skip, data stages fail" >&2
export MUONREC_SHARED
build=$root/build-gpu
out=${OUT:-$build/out}
mkdir -p "$out"
stages=("$@")
[ ${#stages[@]} -eq 0 ] && stages=(build tests sanitize bench)
summary=()
# The README's best TIGER setting (co-occurrence item vectors of width 256, d 128, ff 512; AdamW's rate, cosine).
tiger_flags="--item-vectors cooccurrence --sid-width 256 --sid-levels 3 --sid-codebook 256 --sid-history 20 --beam 20 --d 128 \
  --blocks 2 --heads 2 --ff 512 --dropout 0.1 --batch 256 --adam-lr 3e-3 --schedule cosine --warmup-steps 100"
# Muon's rate, for the runs with --optim muon (the AdamW runs refuse Muon's flags).
muon_flags() { [ "$1" = muon ] && echo "--muon-lr 0.02"; }
note() { summary+=("$1"); echo "== $1"; }
joined_lines() { grep -E "$1" "$2" | tr '\n' ' '; }  # the lines of file $2 matching $1, on one line

for stage in "${stages[@]}"; do
  case "$stage" in
    build)
      cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMUONREC_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
        > "$out/configure.log" 2>&1 && cmake --build "$build" -j16 -- -k 0 > "$out/build.log" 2>&1
      note "build: exit $? ($(grep -c 'error' "$out/build.log") error lines)"
      ;;
    tests)
      ctest --test-dir "$build" -j8 --output-on-failure > "$out/ctest.log" 2>&1
      note "tests: $(grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1); skipped: $(grep -c 'Skipped' "$out/ctest.log")"
      grep -E '\(Failed\)|\*\*\*' "$out/ctest.log" | head -20
      ;;
    sanitize)
      for t in test_kernels_gpu test_ops test_hstu test_optim; do
        [ -x "$build/tests/$t" ] || continue
        compute-sanitizer --tool memcheck --error-exitcode 3 "$build/tests/$t" --gtest_filter='*Gpu*:*GPU*:*gpu*' \
          > "$out/sanitize_$t.log" 2>&1
        note "compute-sanitizer memcheck $t: exit $? ($(grep -c 'ERROR SUMMARY: 0 errors' "$out/sanitize_$t.log") clean summaries)"
      done
      ;;
    bench)
      "$build/bench/bench_optim" --device cuda > "$out/micro_muonrec.jsonl" 2> "$out/bench_optim.err"
      "$build/bench/bench_ops" --device cuda >> "$out/micro_muonrec.jsonl" 2> "$out/bench_ops.err"
      python3 "$MUONREC_SHARED/bench/torch_ref.py" --micro > "$out/micro_torch.jsonl" 2> "$out/torch_micro.err"
      python3 bench/compare.py "$out/micro_muonrec.jsonl" "$out/micro_torch.jsonl" --markdown | tee "$out/micro_table.md"
      note "bench: $(wc -l < "$out/micro_muonrec.jsonl") muonrec rows, $(wc -l < "$out/micro_torch.jsonl") torch rows"
      ;;
    models)
      # Every model with each optimizer on the GPU, briefly: sasrec, bert4rec and hstu on ML-1M (3
      # epochs), tiger on Beauty (2 epochs, 2000 sampled users; the encoder-decoder 1 epoch); each line
      # gives the test metrics.
      for optim in adamw muon; do
        for model in sasrec bert4rec hstu; do
          "$build/tools/muonrec" train --model "$model" --data "$MUONREC_SHARED/data/ml-1m/ml-1m.txt" --d 64 \
            --blocks 2 --heads 1 --maxlen 200 --dropout 0.2 --optim "$optim" --epochs 3 --eval-every 3 --device cuda \
            > "$out/models_${model}_$optim.log" 2>&1
          note "$model $optim (GPU, 3 epochs): exit $? | $(grep -E '^test at that epoch' "$out/models_${model}_$optim.log")"
        done
        "$build/tools/muonrec" train --model tiger --data "$MUONREC_SHARED/data/beauty/Beauty.txt" $tiger_flags \
          --optim "$optim" $(muon_flags "$optim") --epochs 2 --eval-every 2 --valid-users 2000 --test-users 2000 --device cuda \
          > "$out/models_tiger_$optim.log" 2>&1
        note "tiger $optim (GPU, 2 epochs): exit $? | $(grep -E 'test \(best validation\)' "$out/models_tiger_$optim.log")"
      done
      "$build/tools/muonrec" train --model tiger --data "$MUONREC_SHARED/data/beauty/Beauty.txt" $tiger_flags \
        --encoder-blocks 2 --optim muon --muon-lr 0.02 --epochs 1 --eval-every 1 --valid-users 2000 --test-users 2000 --device cuda \
        > "$out/models_tiger_encoder_decoder.log" 2>&1
      note "tiger encoder-decoder muon (GPU, 1 epoch): exit $? | $(grep -E 'test \(best validation\)' "$out/models_tiger_encoder_decoder.log")"
      "$build/tools/muonrec" train --model tiger --data "$MUONREC_SHARED/data/beauty/Beauty.txt" $tiger_flags \
        --sid-tokenizer rq-vae --rqvae-epochs 50 --optim muon --muon-lr 0.02 --epochs 1 --eval-every 1 \
        --valid-users 2000 --test-users 2000 --device cuda > "$out/models_tiger_rq_vae.log" 2>&1
      status=$?
      tokenizer_line=$(grep -E '^semantic IDs' "$out/models_tiger_rq_vae.log" | cut -c1-120)
      note "tiger rq-vae tokenizer (GPU, 50 + 1 epochs): exit $status | $tokenizer_line"
      ;;
    train-tiger)
      # The README's best TIGER row on Beauty (24 epochs, every test user), with MUONREC_OPTIM
      # (MUONREC_ENCODER_BLOCKS=N: the encoder-decoder).
      optim=${MUONREC_OPTIM:-muon} encoder=${MUONREC_ENCODER_BLOCKS:-0}
      run=beauty_tiger_${optim}_E${encoder}
      "$build/tools/muonrec" train --model tiger --data "$MUONREC_SHARED/data/beauty/Beauty.txt" $tiger_flags \
        --encoder-blocks "$encoder" --optim "$optim" $(muon_flags "$optim") --epochs "${MUONREC_EPOCHS:-24}" --eval-every 2 \
        --valid-users 2000 --device cuda --metrics "$out/$run.jsonl" > "$out/$run.log" 2>&1
      note "$run: exit $? | $(grep -E 'test \(best validation\)' "$out/$run.log") | $(grep -E '^training time' "$out/$run.log")"
      ;;
    train-sasrec|train-hstu)
      model=${stage#train-}
      epochs=${MUONREC_EPOCHS:-160} blocks=${MUONREC_BLOCKS:-2} heads=${MUONREC_HEADS:-1} optim=${MUONREC_OPTIM:-adamw}
      run=ml1m_${model}_L${blocks}H${heads}_${optim}_${MUONREC_MATMUL:-fp32}
      "$build/tools/muonrec" train --model "$model" --data "$MUONREC_SHARED/data/ml-1m/ml-1m.txt" --d 64 --blocks "$blocks" \
        --heads "$heads" --maxlen 200 --batch 128 --dropout 0.2 --lr 1e-3 --optim "$optim" --epochs "$epochs" \
        --eval-every 5 --device cuda --matmul-precision "${MUONREC_MATMUL:-fp32}" --metrics "$out/$run.jsonl" \
        > "$out/$run.log" 2>&1
      note "train $run ($epochs epochs): $(grep -E '^test at that epoch' "$out/$run.log") | $(grep -E '^training time' "$out/$run.log")"
      ;;
    e2e)
      # Our training and the PyTorch peer's on ML-1M, same settings, one GPU: seconds per epoch.
      python3 bench/e2e.py --muonrec "$build/tools/muonrec" --peer "$MUONREC_SHARED/bench/torch_ref.py" \
        --data "$MUONREC_SHARED/data/ml-1m/ml-1m.txt" --epochs "${MUONREC_EPOCHS:-10}" --optim "${MUONREC_OPTIM:-adamw}" \
        --matmul-precision "${MUONREC_MATMUL:-fp32,bf16}" --out "$out/e2e" --markdown | tee "$out/e2e_table.md"
      note "e2e: $(tail -n +3 "$out/e2e_table.md" | tr '\n' ' ')"
      ;;
    large)
      # Larger models on a 100,000-item synthetic catalogue: d=256, 8 blocks, 4 heads, T=200; fits
      # on one GPU, and the log reports tokens/s.
      for model in sasrec hstu; do
        "$build/tools/muonrec" train --model "$model" --data synthetic --synthetic-users 20000 --synthetic-items 100000 \
          --d 256 --blocks 8 --heads 4 --maxlen 200 --batch 128 --epochs 2 --eval-every 2 --device cuda \
          --matmul-precision "${MUONREC_MATMUL:-fp32}" > "$out/large_$model.log" 2>&1
        note "large $model d=256 L=8 H=4 V=100k: exit $? | $(grep -E '^training time' "$out/large_$model.log")"
        # The same shapes as timed steps: phases and peak tensor memory (full windows: an upper bound).
        log=$out/bench_large_$model.log
        "$build/tools/muonrec" bench --model "$model" --items 100000 --d 256 --blocks 8 --heads 4 --maxlen 200 \
          --batch 128 --device cuda --matmul-precision "${MUONREC_MATMUL:-fp32}" > "$log" 2>&1
        note "bench $model d=256 L=8 H=4 V=100k: exit $? | $(joined_lines '^(step|phases|peak)' "$log")"
      done
      ;;
    steps)
      # `muonrec bench` on the ML-1M shapes of reference/PERF.md (d=64, 2 blocks, T=200, batch 128,
      # 3,416 items): milliseconds per step and per phase, fp32 and bf16 products; then TIGER.
      for model in sasrec hstu; do
        for precision in fp32 bf16; do
          log=$out/steps_${model}_$precision.log
          "$build/tools/muonrec" bench --model "$model" --steps 50 --device cuda --matmul-precision "$precision" \
            > "$log" 2>&1
          note "steps $model $precision: exit $? | $(joined_lines '^(step|phases)' "$log")"
        done
      done
      # TIGER with the model shape of the README's best Beauty run (12,101 items, codes 3 x 256, 20
      # history items, d 128, ff 512), under AdamW and under Muon.
      for optim in adamw muon; do
        log=$out/steps_tiger_$optim.log
        "$build/tools/muonrec" bench --model tiger --items 12101 --d 128 --blocks 2 --heads 2 --ff 512 --dropout 0.1 \
          --batch 256 --steps 50 --optim "$optim" --device cuda > "$log" 2>&1
        note "steps tiger $optim fp32: exit $? | $(joined_lines '^(step|phases)' "$log")"
      done
      ;;
    profile)
      # Kernel time breakdown of a window of SASRec and HSTU training steps (Nsight Compute: each
      # kernel's duration, summed per kernel name; the window skips start-up and the first steps).
      for model in sasrec hstu; do
        ncu --launch-skip 3000 --launch-count 600 --metrics gpu__time_duration.sum --csv \
          "$build/tools/muonrec" train --model "$model" --data "$MUONREC_SHARED/data/ml-1m/ml-1m.txt" --epochs 1 \
          --eval-every 100 --device cuda > "$out/ncu_$model.csv" 2> "$out/ncu_$model.err"
        note "profile $model: exit $? (ncu_$model.csv)"
        python3 bench/kernel_summary.py "$out/ncu_$model.csv" | head -25
      done
      ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
