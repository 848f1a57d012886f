#!/usr/bin/env python3
"""End-to-end benchmark: trains each model with muonrec and with the PyTorch peer
(../shared/bench/torch_ref.py, eager, bf16 autocast) on the same data and settings, in one command
on one GPU, and prints seconds per epoch (median), the ratio, and the test NDCG@10 each reached.

  bench/e2e.py --muonrec build-gpu/tools/muonrec --peer .shared/bench/torch_ref.py \\
      --data .shared/data/ml-1m/ml-1m.txt --models sasrec,hstu --epochs 10 [--optim muon] \\
      [--d 64 --blocks 2 --heads 1 --ff 0] [--matmul-precision fp32,bf16] [--out DIR] [--markdown]

Settings follow ../shared/reference/PERF.md: T=200, batch 128, dropout 0.2, AdamW lr 1e-3 (Muon lr 0.02 on
the 2-D block weights with --optim muon, the peer's split), seen items filtered in evaluation as the
peer filters them: the items of its 200-item input window (--filter-seen-last 200; muonrec's default
filters the whole history). The peer always runs under bf16 autocast; --matmul-precision lists ours
(fp32, tf32, bf16 products): each model runs once per listed precision against one run of the peer.
Known differences the table does not remove: the peer's SASRec applies dropout 0.2 to the attention
probabilities (MODELS.md has none, nor do we), and its training loop reads a token count back from
the GPU every step (a synchronisation ours does not make).
"""
import argparse
import json
import os
import subprocess
import sys

# The peer's input window (T), which is also what it filters seen items from.
WINDOW = 200


class RunFailed(Exception):
    """One training run failed: its model's rows are left out, the other models' are still measured."""


def run(cmd, log_path):
    with open(log_path, "w") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RunFailed(f"{' '.join(cmd)} failed with exit {done.returncode}; see {log_path}")


def last_record(path, kind):
    found = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:  # the peer's log mixes its stderr in: a line may only look like JSON
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("kind") == kind:
                found = record
    if found is None:
        raise RunFailed(f"no '{kind}' record in {path}")
    return found


def ours(a, model, precision):
    metrics = os.path.join(a.out, f"muonrec_{model}_{precision}.jsonl")
    if os.path.exists(metrics):
        os.remove(metrics)
    cmd = [a.muonrec, "train", "--model", model, "--data", a.data, "--d", str(a.d), "--blocks", str(a.blocks),
           "--heads", str(a.heads), "--maxlen", str(WINDOW), "--batch", "128", "--dropout", "0.2",
           "--lr", "1e-3", "--epochs", str(a.epochs), "--eval-every", str(a.epochs), "--device", "cuda",
           "--metrics", metrics, "--matmul-precision", precision, "--filter-seen-last", str(WINDOW)]
    if model != "hstu":  # HSTU has no feed-forward block: muonrec refuses --ff for it
        cmd += ["--ff", str(a.ff)]
    if a.optim == "muon":
        cmd += ["--optim", "muon", "--param-policy", "hidden", "--muon-lr", "0.02"]
    run(cmd, os.path.join(a.out, f"muonrec_{model}_{precision}.log"))
    result = last_record(metrics, "result")
    return result["median_epoch_seconds"], result["test"]["ndcg10"]


def peer(a, model):
    log = os.path.join(a.out, f"torch_{model}.log")
    cmd = [sys.executable, a.peer, "--data", a.data, "--model", model, "--optim", a.optim, "--d", str(a.d),
           "--blocks", str(a.blocks), "--heads", str(a.heads), "--ff", str(a.ff), "--epochs", str(a.epochs),
           "--eval_every", str(a.epochs), "--filter_seen"]
    run(cmd, log)
    result = last_record(log, "train")
    return result["median_epoch_sec"], result["test_ndcg10"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--muonrec", required=True)
    p.add_argument("--peer", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--models", default="sasrec,hstu")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--optim", choices=["adamw", "muon"], default="adamw")
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--ff", type=int, default=0)
    p.add_argument("--matmul-precision", default="fp32", help="comma-separated: fp32, tf32, bf16")
    p.add_argument("--out", default="e2e-out")
    p.add_argument("--markdown", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    table_rows = os.path.join(a.out, "e2e.jsonl")
    open(table_rows, "w").close()  # this run's rows only, though --out held an earlier run's
    rows, failures = [], []
    precisions = a.matmul_precision.split(",")
    for precision in precisions:
        if precision not in ("fp32", "tf32", "bf16"):
            sys.exit(f"e2e: unknown matmul precision '{precision}' (expected fp32, tf32 or bf16)")
    for model in a.models.split(","):
        try:
            peer_s, peer_ndcg = peer(a, model)
        except RunFailed as e:
            failures.append(f"{model} (PyTorch): {e}")
            continue
        for precision in precisions:
            try:
                ours_s, ours_ndcg = ours(a, model, precision)
            except RunFailed as e:
                failures.append(f"{model} {precision} (muonrec): {e}")
                continue
            rows.append(dict(kind="e2e", model=model, optim=a.optim, d=a.d, blocks=a.blocks, heads=a.heads, ff=a.ff,
                             epochs=a.epochs, matmul_precision=precision, muonrec_epoch_s=ours_s,
                             torch_epoch_s=peer_s, speedup=peer_s / ours_s, muonrec_test_ndcg10=ours_ndcg,
                             torch_test_ndcg10=peer_ndcg))
            with open(table_rows, "a") as f:  # each row as soon as it is measured
                f.write(json.dumps(rows[-1]) + "\n")
    header = ["run", "muonrec s/epoch", "PyTorch s/epoch", "speed-up", "muonrec NDCG@10", "PyTorch NDCG@10"]
    lines = []
    for r in rows:
        name = (f"{r['model']} d={r['d']} L={r['blocks']} H={r['heads']} {r['optim']}, matmul "
                f"{r['matmul_precision']}, {r['epochs']} epochs")
        lines.append([name, f"{r['muonrec_epoch_s']:.4f}", f"{r['torch_epoch_s']:.4f}", f"{r['speedup']:.2f}x",
                      f"{r['muonrec_test_ndcg10']:.4f}", f"{r['torch_test_ndcg10']:.4f}"])
    if a.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        for line in [header] + lines:
            print("  ".join(f"{c:>18}" for c in line))
    for failure in failures:
        print(f"e2e: {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
