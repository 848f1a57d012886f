#!/usr/bin/env python3
"""Pairs muonrec's benchmark lines with the PyTorch peer's (same "op" names) and prints a ratio
table. Reads JSON lines from the files given (or stdin); lines without "kind": "micro" are ignored.
Usage: compare.py ours.jsonl torch.jsonl [--markdown]"""
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


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    markdown = "--markdown" in sys.argv
    ours, theirs = {}, {}
    for record in read(args):
        (ours if record.get("impl") == "muonrec" else theirs)[record["op"]] = record
    header = ["op", "muonrec ms", "PyTorch ms", "speed-up"]
    lines = []
    for op, mine in ours.items():
        peer = theirs.get(op)
        ratio = f"{peer['ms'] / mine['ms']:.2f}x" if peer and mine["ms"] > 0 else "-"
        extra = f" ({mine['GBps']} GB/s)" if "GBps" in mine else ""
        lines.append([op, f"{mine['ms']:.4f}{extra}", f"{peer['ms']:.4f}" if peer else "-", ratio])
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in lines:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(r[i]) for r in lines + [header]) for i in range(len(header))]
        for row in [header] + lines:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


if __name__ == "__main__":
    main()
