#!/usr/bin/env python3
"""Pairs muonrec's benchmark lines with the PyTorch peer's (same "op" names) and prints a ratio
table. Reads JSON lines from the files given; lines without "kind": "micro" are ignored.
Usage: compare.py ours.jsonl torch.jsonl [--markdown]; exits 1 when no row pairs."""
import argparse
import json
import sys


def read(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("kind") == "micro":
                    rows.append(record)
    return rows


def peer_name(op):
    """The peer's row our row is judged against: the same name, or for our precision variants
    (suffix _tf32/_bf16) the peer's base row (it runs under bf16 autocast), or for HSTU attention
    the SDPA row of the same shape (the issue's target)."""
    for suffix in ("_tf32", "_bf16"):
        if op.endswith(suffix):
            op = op[: -len(suffix)]
    return op.replace("hstu_attention_fwdbwd_", "sdpa_causal_fwdbwd_")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="JSON-lines files: muonrec's rows and the peer's")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    ours, theirs = {}, {}
    for record in read(args.files):
        (ours if record.get("impl") == "muonrec" else theirs)[record["op"]] = record
    header = ["op", "muonrec ms", "PyTorch ms", "speed-up"]
    lines = []
    for op, mine in ours.items():
        peer_op = peer_name(op)
        peer = theirs.get(peer_op)
        ratio = f"{peer['ms'] / mine['ms']:.2f}x" if peer and mine["ms"] > 0 else "-"
        extra = f" ({mine['GBps']} GB/s)" if "GBps" in mine else f" ({mine['TFLOPs']} TFLOP/s)" if "TFLOPs" in mine else ""
        against = f" (vs {peer_op})" if peer and peer_op != op else ""
        lines.append([op + against, f"{mine['ms']:.4f}{extra}", f"{peer['ms']:.4f}" if peer else "-", ratio])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in lines:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in lines + [header]) for i in range(len(header))]
        for row in [header] + lines:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    # A crashed benchmark leaves rows out: a table with nothing to compare is a failure, not a result.
    if not any(row[-1] != "-" for row in lines):
        sys.exit(f"compare: no muonrec row has a peer row to compare with ({len(ours)} muonrec rows, "
                 f"{len(theirs)} peer rows)")


if __name__ == "__main__":
    main()
