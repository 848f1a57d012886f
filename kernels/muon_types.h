// The table entries and hyperparameters of the fused Muon step (one launch for many small
// matrices). Plain structs: the host builds them, the kernel reads them from device memory.
#pragma once

#include <cstdint>

namespace muonrec::kernels {

constexpr int kMaxNewtonSchulzSteps = 16;

struct MuonMatrix {
  float* param;            // [rows, cols] fp32 master weights
  const float* grad;       // [rows, cols]
  float* momentum_buffer;  // [rows, cols]
  float* scratch;          // [rows, cols]: the next iterate between products
  int32_t rows;
  int32_t cols;
  float adjusted_lr;       // lr adjusted to this shape (Muon's adjust_lr)
};

struct MuonHyper {
  float lr;            // unadjusted: used for the weight decay
  float momentum;
  float weight_decay;
  float eps;
  float norm_factor;
  int32_t nesterov;
  int32_t ns_steps;
  float coefficients[kMaxNewtonSchulzSteps][3];
  float zero = 0.0f, one = 1.0f;  // cuBLAS reads every scalar from device memory (graph replay)
};

// Shared memory the fused kernel needs for a [rows, cols] matrix: X (padded rows) and two Gram-sized
// buffers, all bf16.
inline int64_t muon_fused_shared_bytes(int64_t rows, int64_t cols) {
  const int64_t side = rows < cols ? rows : cols, length = rows < cols ? cols : rows;
  return 2 * (side * (length + 2) + 2 * side * (side + 2));
}

}  // namespace muonrec::kernels
