// CPU reference: row-major single-precision GEMM through OpenBLAS. Always full fp32: the matmul
// precision setting (engine/precision.h) is read by the CUDA backend only, so that the CPU stays
// the exact reference every GPU test compares against.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// C[m, n] = alpha * op(A) @ op(B) + beta * C, row-major. op(A) is [m, k]: A is stored [m, k], or
// [k, m] when trans_a. op(B) is [k, n]: B is stored [k, n], or [n, k] when trans_b.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, const float* b,
          float beta, float* c);

}  // namespace muonrec::kernels::cpu
