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
// The same over strided operands, in one OpenBLAS call on the calling thread: consecutive rows of the
// stored A, B and C lie lda, ldb and ldc floats apart (one head's columns of a packed [T, 3*H*Dh]
// block, say). Safe to call from several OpenMP threads at once.
void gemm_strided(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace muonrec::kernels::cpu
