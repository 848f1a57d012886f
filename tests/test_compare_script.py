#!/usr/bin/env python3
"""bench/compare.py on hand-made benchmark rows: which peer row each of ours is judged against, the
speed-up's direction (the peer's time over ours), and a table with nothing to compare failing."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "compare.py")


def write_rows(path, rows, noise=""):
    with open(path, "w") as f:
        f.write(noise)
        for row in rows:
            f.write(json.dumps(dict(kind="micro", **row)) + "\n")


class Compare(unittest.TestCase):
    def compare(self, ours, theirs, *flags, noise=""):
        with tempfile.TemporaryDirectory() as tmp:
            write_rows(os.path.join(tmp, "ours.jsonl"), ours)
            write_rows(os.path.join(tmp, "torch.jsonl"), theirs, noise)
            return subprocess.run([sys.executable, SCRIPT, os.path.join(tmp, "ours.jsonl"),
                                   os.path.join(tmp, "torch.jsonl"), *flags], capture_output=True, text=True)

    def test_rows_pair_by_name_and_the_speed_up_is_the_peers_time_over_ours(self):
        done = self.compare(
            [dict(impl="muonrec", op="adamw_1m", ms=0.5, GBps=100),
             dict(impl="muonrec", op="ce_bf16", ms=2.0, TFLOPs=3.5),
             dict(impl="muonrec", op="hstu_attention_fwdbwd_T200", ms=0.25),
             dict(impl="muonrec", op="ours_only", ms=1.0)],
            [dict(impl="torch", op="adamw_1m", ms=1.5), dict(impl="torch", op="ce", ms=1.0),
             dict(impl="torch", op="sdpa_causal_fwdbwd_T200", ms=0.2)],
            "--markdown", noise="{not json, a line of the peer's stderr\n")
        self.assertEqual(done.returncode, 0, done.stderr)
        table = done.stdout.splitlines()
        self.assertEqual(table[0], "| op | muonrec ms | PyTorch ms | speed-up |")
        self.assertIn("| adamw_1m | 0.5000 (100 GB/s) | 1.5000 | 3.00x |", table)
        self.assertIn("| ce_bf16 (vs ce) | 2.0000 (3.5 TFLOP/s) | 1.0000 | 0.50x |", table)
        self.assertIn("| hstu_attention_fwdbwd_T200 (vs sdpa_causal_fwdbwd_T200) | 0.2500 | 0.2000 | 0.80x |", table)
        self.assertIn("| ours_only | 1.0000 | - | - |", table)

    def test_a_table_with_nothing_to_compare_fails(self):
        done = self.compare([dict(impl="muonrec", op="adamw_1m", ms=0.5)], [])
        self.assertEqual(done.returncode, 1)
        self.assertIn("compare: no muonrec row has a peer row to compare with (1 muonrec rows, 0 peer rows)",
                      done.stderr)

    def test_help_and_missing_files_are_usage_errors(self):
        help_run = subprocess.run([sys.executable, SCRIPT, "-h"], capture_output=True, text=True)
        self.assertEqual(help_run.returncode, 0, help_run.stderr)
        self.assertIn("usage:", help_run.stdout)
        bare = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True)
        self.assertEqual(bare.returncode, 2)
        self.assertIn("the following arguments are required: files", bare.stderr)


if __name__ == "__main__":
    unittest.main()
