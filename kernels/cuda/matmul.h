// CUDA launchers: row-major GEMM through cuBLAS (contract of kernels/cpu/matmul.h). fp32 operands
// are multiplied at the process's matmul precision (engine/precision.h: FP32 exact, TF32 or BF16
// on tensor cores), always with fp32 accumulation.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major. op(A) is [m, k]: A is stored [m, k], or
// [k, m] when trans_a. op(B) is [k, n]: B is stored [k, n], or [n, k] when trans_b.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c, cudaStream_t stream);

enum class GemmType { F32, BF16 };
// Row-major matrices with `ld` elements from one row's start to the next (ld >= the row length).
struct GemmInput {
  const void* data;
  GemmType type;
  int64_t ld;
};
struct GemmOutput {
  void* data;
  GemmType type;
  int64_t ld;
};

// gemm with explicit leading dimensions and element types, for the mixed-precision paths of the
// CUDA backend (the CPU computes in fp32 only, so this has no CPU twin). A and B share a type:
// fp32 ones follow the precision setting; bf16 ones multiply exactly with fp32 accumulation. A
// bf16 C (bf16 operands only) is rounded once, after the fp32 alpha/beta epilogue.
void gemm_ex(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, GemmInput a, GemmInput b,
             float beta, GemmOutput c, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
