// CUDA twins of kernels/cpu/muon.h (same names and arguments, plus the stream).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/muon_types.h"

namespace muonrec::kernels::cuda {

void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov,
                   cudaStream_t stream);
void sum_squares(const float* x, float* out, int64_t n, cudaStream_t stream);
void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n,
                           cudaStream_t stream);
void round_to_bf16(float* x, int64_t n, cudaStream_t stream);
void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha, cudaStream_t stream);

// The whole Muon step (momentum, bf16 Newton-Schulz with fp32 accumulation, decoupled decay and
// update) for `count` matrices in one launch: one block per matrix, the iterate kept in shared
// memory. matrices and hyper are device pointers; shared_bytes is the largest
// muon_fused_shared_bytes of the batch (at most muon_fused_max_shared_bytes()). Its reference is
// the step-by-step path (muon_momentum, gemm, round_to_bf16, ... on the CPU) in bf16 mode.
void muon_fused_small(const MuonMatrix* matrices, int32_t count, const MuonHyper* hyper, int64_t shared_bytes,
                      cudaStream_t stream);
// The shared memory a block may use on this GPU (opt-in maximum).
int64_t muon_fused_max_shared_bytes();

// The same step for `count` matrices of one shape [rows, cols] too large for the fused kernel:
// stacked bf16 iterates, each Newton-Schulz product one strided-batched cuBLAS GEMM (bf16 operands,
// fp32 accumulation, bf16 result: torch's rounding points), tall matrices through transposed GEMMs
// instead of copies. matrices and hyper are device pointers.
void muon_batched_step(const MuonMatrix* matrices, int32_t count, int32_t rows, int32_t cols,
                       const MuonHyper* hyper, int32_t ns_steps, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
