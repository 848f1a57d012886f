// CUDA launcher: row-major single-precision GEMM through cuBLAS (contract of kernels/cpu/matmul.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major. op(A) is [m, k]: A is stored [m, k], or
// [k, m] when trans_a. op(B) is [k, n]: B is stored [k, n], or [n, k] when trans_b.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
