#!/usr/bin/env python3
"""bench/kernel_summary.py: kernel names keep their template arguments (one row per version of a
template) and lose their parameter lists; launches of one kernel are summed across units."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "bench", "kernel_summary.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import kernel_summary  # noqa: E402

KERNEL = "void muonrec::kernels::cuda::activation_forward_kernel"
PARAMETERS = "(const float *, float *, long)"
GELU = KERNEL + "<(muonrec::kernels::Activation)0>" + PARAMETERS
SILU = KERNEL + "<(muonrec::kernels::Activation)1>" + PARAMETERS
ANONYMOUS = ("void muonrec::kernels::cuda::(anonymous namespace)::row_softmax_kernel<(int)64>"
             "(const float *, float *, int)")


class ShortName(unittest.TestCase):
    def test_template_arguments_stay_and_parameters_go(self):
        self.assertEqual(kernel_summary.short_name(GELU),
                         "muonrec::kernels::cuda::activation_forward_kernel<(muonrec::kernels::Activation)0>")
        self.assertEqual(kernel_summary.short_name(ANONYMOUS),
                         "muonrec::kernels::cuda::row_softmax_kernel<(int)64>")
        self.assertEqual(kernel_summary.short_name("ampere_sgemm_128x64_nn"), "ampere_sgemm_128x64_nn")


class Summary(unittest.TestCase):
    def test_versions_of_a_template_are_rows_of_their_own(self):
        rows = ['"ID","Kernel Name","Metric Name","Metric Unit","Metric Value"']
        for i, (name, unit, value) in enumerate([(GELU, "usecond", "10"), (SILU, "usecond", "30"),
                                                 (GELU, "nsecond", "5,000")]):
            rows.append(f'"{i}","{name}","gpu__time_duration.sum","{unit}","{value}"')
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("==PROF== noise line\n" + "\n".join(rows) + "\n")
        try:
            out = subprocess.run([sys.executable, SCRIPT, f.name], capture_output=True, text=True, check=True).stdout
        finally:
            os.unlink(f.name)
        lines = out.splitlines()
        self.assertEqual(len(lines), 4, out)  # header, two kernels, total
        self.assertTrue(lines[1].startswith("muonrec::kernels::cuda::activation_forward_kernel<"
                                            "(muonrec::kernels::Activation)1>"), out)
        self.assertEqual(lines[1].split()[-3:], ["1", "30.0", "66.7%"], out)
        self.assertEqual(lines[2].split()[-3:], ["2", "15.0", "33.3%"], out)  # 10 us + 5,000 ns
        self.assertEqual(lines[3].split()[-2:], ["3", "45.0"], out)


if __name__ == "__main__":
    unittest.main()
