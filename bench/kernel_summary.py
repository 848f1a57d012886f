#!/usr/bin/env python3
"""Sums Nsight Compute's per-launch kernel durations by kernel name and prints the top kernels.
Input: `ncu --metrics gpu__time_duration.sum --csv ...` output (one row per launch and metric).
Usage: kernel_summary.py ncu.csv"""
import csv
import sys
from collections import defaultdict

UNIT_TO_US = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6}


def short_name(kernel):
    """A demangled kernel name without its return type, parameter list and anonymous namespace (whose
    parentheses would otherwise cut every name of ours to 'void muonrec::kernels::cuda::'). The
    parameter list is the balanced '(...)' that ends the name: template arguments may hold
    parentheses too ('kernel<(muonrec::kernels::Activation)0>' is the GELU version of a kernel, one
    row of its own)."""
    name = kernel.replace("(anonymous namespace)::", "").strip()
    if name.endswith(")"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i].rstrip()
                break
    return name[len("void "):] if name.startswith("void ") else name


def main():
    total_us, launches = defaultdict(float), defaultdict(int)
    with open(sys.argv[1]) as f:
        rows = csv.reader(line for line in f if line.startswith('"'))
        header = next(rows, None)
        if header is None:
            sys.exit("kernel_summary: no CSV rows (did ncu profile anything?)")
        col = {name: i for i, name in enumerate(header)}
        for row in rows:
            if row[col["Metric Name"]] != "gpu__time_duration.sum":
                continue
            name = short_name(row[col["Kernel Name"]])
            value = float(row[col["Metric Value"]].replace(",", ""))
            total_us[name] += value * UNIT_TO_US.get(row[col["Metric Unit"]], 1.0)
            launches[name] += 1
    grand = sum(total_us.values())
    # Whole names, however long: cut to a width, two versions of one template would read as one.
    width = max([len("all kernels")] + [len(name) for name in total_us])
    print(f"{'kernel':{width}} {'launches':>8} {'total us':>10} {'share':>6}")
    for name, us in sorted(total_us.items(), key=lambda kv: -kv[1]):
        print(f"{name:{width}} {launches[name]:8d} {us:10.1f} {100 * us / grand:5.1f}%")
    print(f"{'all kernels':{width}} {sum(launches.values()):8d} {grand:10.1f}")


if __name__ == "__main__":
    main()
