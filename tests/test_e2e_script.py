#!/usr/bin/env python3
"""bench/e2e.py against stand-ins for muonrec and the PyTorch peer: the flags it passes each (no --ff
for HSTU, which muonrec refuses), the speed-up it computes, a failed model leaving the others' rows
measured and written (and only this run's), and a log line that only looks like JSON skipped."""
import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench", "e2e.py")

FAKE_MUONREC = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, sys
    args = sys.argv[1:]
    model = args[args.index("--model") + 1]
    if model == "hstu" and "--ff" in args:
        sys.exit("muonrec: error: --ff applies to --model sasrec, bert4rec or tiger only")
    assert args[args.index("--filter-seen-last") + 1] == "200" and args[args.index("--device") + 1] == "cuda"
    with open(args[args.index("--metrics") + 1], "w") as f:
        f.write(json.dumps({"kind": "result", "median_epoch_seconds": 0.1, "test": {"ndcg10": 0.18}}) + "\\n")
    """)

FAKE_PEER = textwrap.dedent("""\
    import json, sys
    args = sys.argv[1:]
    if args[args.index("--model") + 1] == "broken":
        sys.exit("peer: no such model")
    assert "--filter_seen" in args
    print("{not JSON: a line of stderr in the log", file=sys.stderr, flush=True)
    print(json.dumps({"kind": "train", "median_epoch_sec": 0.7, "test_ndcg10": 0.176}))
    """)


class EndToEnd(unittest.TestCase):
    def test_rows_of_the_models_that_ran_and_a_failure_for_the_one_that_did_not(self):
        with tempfile.TemporaryDirectory() as tmp:
            muonrec = os.path.join(tmp, "muonrec")
            with open(muonrec, "w") as f:
                f.write(FAKE_MUONREC)
            os.chmod(muonrec, os.stat(muonrec).st_mode | stat.S_IEXEC)
            peer = os.path.join(tmp, "torch_ref.py")
            with open(peer, "w") as f:
                f.write(FAKE_PEER)
            out = os.path.join(tmp, "out")
            os.makedirs(out)
            with open(os.path.join(out, "e2e.jsonl"), "w") as f:  # an earlier run's row: not this run's
                f.write(json.dumps({"model": "stale"}) + "\n")
            done = subprocess.run([sys.executable, SCRIPT, "--muonrec", muonrec, "--peer", peer, "--data", "d.txt",
                                   "--models", "sasrec,broken,hstu", "--epochs", "2", "--out", out, "--markdown"],
                                  capture_output=True, text=True)
            self.assertEqual(done.returncode, 1, done.stderr)
            self.assertIn("e2e: broken (PyTorch):", done.stderr)
            self.assertNotIn("hstu", done.stderr)
            table = done.stdout.splitlines()
            self.assertEqual(len(table), 4, done.stdout)  # header, separator, sasrec, hstu
            self.assertIn("| sasrec d=64 L=2 H=1 adamw, matmul fp32, 2 epochs | 0.1000 | 0.7000 | 7.00x | 0.1800 | "
                          "0.1760 |", table[2])
            self.assertTrue(table[3].startswith("| hstu d=64"), done.stdout)
            with open(os.path.join(out, "e2e.jsonl")) as f:
                rows = [json.loads(line) for line in f]
            self.assertEqual([r["model"] for r in rows], ["sasrec", "hstu"])
            self.assertAlmostEqual(rows[1]["speedup"], 7.0)


if __name__ == "__main__":
    unittest.main()
