// The process-wide precision of fp32 matrix products on the GPU, like PyTorch's
// torch.set_float32_matmul_precision. It trades exactness for tensor-core speed:
//   FP32  full single precision (the default: GPU results match the CPU reference to ~1e-6)
//   TF32  operands rounded to TF32 (10-bit mantissa) inside the product, fp32 accumulation
//   BF16  operands rounded to bf16 (7-bit mantissa), fp32 accumulation; the chunked softmax
//         cross-entropy also keeps its logits tiles in bf16 (as under torch's bf16 autocast)
// Inputs, outputs and accumulation stay fp32 in every mode. Only the CUDA backend reads the
// setting: the CPU backend always computes in fp32, so it stays the exact reference.
#pragma once

#include <string>

namespace muonrec {

enum class MatmulPrecision { FP32, TF32, BF16 };

void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();

// "fp32", "tf32" or "bf16" (the CLI's --matmul-precision values); throws on anything else.
MatmulPrecision parse_matmul_precision(const std::string& name);
const char* matmul_precision_name(MatmulPrecision precision);

// Sets a precision for a scope and restores the previous one on exit (tests, benchmarks).
class MatmulPrecisionGuard {
 public:
  explicit MatmulPrecisionGuard(MatmulPrecision precision) : previous_(matmul_precision()) {
    set_matmul_precision(precision);
  }
  ~MatmulPrecisionGuard() { set_matmul_precision(previous_); }
  MatmulPrecisionGuard(const MatmulPrecisionGuard&) = delete;
  MatmulPrecisionGuard& operator=(const MatmulPrecisionGuard&) = delete;

 private:
  MatmulPrecision previous_;
};

}  // namespace muonrec
