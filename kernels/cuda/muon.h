// CUDA twins of kernels/cpu/muon.h (same names and arguments, plus the stream), and the two GPU
// paths of a whole Muon step, whose reference is the step-by-step path in bf16 mode.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "muonrec/kernels/muon_types.h"

namespace muonrec::kernels::cuda {

void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov,
                   cudaStream_t stream);
void sum_squares(const float* x, float* out, int64_t n, cudaStream_t stream);
void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n,
                           cudaStream_t stream);
void round_to_bf16(float* x, int64_t n, cudaStream_t stream);
void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha, cudaStream_t stream);

// The whole Muon step (momentum, bf16 Newton-Schulz with fp32 accumulation, decoupled decay and
// update) for `count` small matrices in one launch: one block per matrix, the iterate and the
// Gram-sized products kept in shared memory, the products on tensor cores. matrices and hyper are
// device pointers; shared_bytes is the largest muon_fused_shared_bytes of the batch (at most
// muon_fused_max_shared_bytes()).
void muon_fused_small(const MuonMatrix* matrices, int32_t count, const MuonHyper* hyper, int64_t shared_bytes,
                      cudaStream_t stream);
// The shared memory a block may use on this GPU (opt-in maximum).
int64_t muon_fused_max_shared_bytes();

// The step for matrices too large for the fused kernel, made once for a list of shapes and run
// every step. Consecutive equal shapes form a group whose bf16 iterates sit in one strided stack, so
// each Newton-Schulz product of a group is one strided-batched cuBLASLt GEMM (bf16 operands, fp32
// accumulation, bf16 result: torch's rounding points; tall matrices through transposed products
// instead of copies). The momentum, the normalisation and the final update are each one launch
// over all matrices. Stacks, tables, workspace and GEMM plans are allocated here once: a step
// allocates nothing and copies nothing from the host.
class MuonBatchedStep {
 public:
  using Shape2 = std::array<int32_t, 2>;  // rows, cols
  // coefficients: the (a, b, c) of each Newton-Schulz iteration, as in MuonHyper (cuBLAS takes
  // them as host scalars; they are fixed for the optimizer's life).
  MuonBatchedStep(std::vector<Shape2> shapes, std::vector<std::array<float, 3>> coefficients);
  ~MuonBatchedStep();
  MuonBatchedStep(const MuonBatchedStep&) = delete;
  MuonBatchedStep& operator=(const MuonBatchedStep&) = delete;

  const std::vector<Shape2>& shapes() const { return shapes_; }
  // One step for matrices[j] of shape shapes()[j]; matrices and hyper are device pointers.
  void run(const MuonMatrix* matrices, const MuonHyper* hyper, cudaStream_t stream) const;

 private:
  struct Impl;
  std::vector<Shape2> shapes_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace muonrec::kernels::cuda
