// The table entries and hyperparameters of the GPU Muon paths (the fused small-matrix kernel and
// the batched large-matrix step). Plain structs: the host builds them, the kernels read them from
// device memory.
#pragma once

#include <cstdint>

#include "muonrec/engine/rng.h"  // MUONREC_HOST_DEVICE

namespace muonrec::kernels {

constexpr int kMaxNewtonSchulzSteps = 16;

// One matrix. Only pointers and the shape: the table stays the same from step to step (and is
// uploaded once) as long as no buffer moves, whatever the learning rate does.
struct MuonMatrix {
  float* param;            // [rows, cols] fp32 master weights
  const float* grad;       // [rows, cols]
  float* momentum_buffer;  // [rows, cols]
  uint16_t* scratch;       // fused path: [side, length] bf16, the next iterate between products
  double lr_scale;         // adjusted lr = lr * lr_scale, in double (Muon's adjust_lr for this shape)
  int32_t rows;
  int32_t cols;
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
};

// The fused kernel's shared-memory layout for a [rows, cols] matrix. The iterate X is [side, length]
// (the matrix, or its transpose when tall) and the Gram-sized A and B are [side, side], all bf16,
// zero-padded to whole 16 x 16 tensor-core tiles (the zeros stay zero through every product), rows
// a further 8 elements longer so that the 8 rows a tile load reads start in different banks. After
// them: one 16 x 16 fp32 tile per warp (accumulators pass through it) and the reduction slots.
constexpr int kMuonFusedThreads = 512;
constexpr int kMuonFusedWarps = kMuonFusedThreads / 32;
constexpr int kMuonTile = 16;
constexpr int kMuonRowPad = 8;

struct MuonFusedLayout {
  int side, length;      // the iterate's true extent
  int side_p, length_p;  // rounded up to whole tiles
  int ldx, ldg;          // row strides of X and of A, B (elements)

  MUONREC_HOST_DEVICE MuonFusedLayout(int64_t rows, int64_t cols)
      : side(static_cast<int>(rows < cols ? rows : cols)),
        length(static_cast<int>(rows < cols ? cols : rows)),
        side_p((side + kMuonTile - 1) / kMuonTile * kMuonTile),
        length_p((length + kMuonTile - 1) / kMuonTile * kMuonTile),
        ldx(length_p + kMuonRowPad),
        ldg(side_p + kMuonRowPad) {}

  // Byte offsets from the start of the block's shared memory. Every bf16 buffer is a multiple of
  // 16 rows long, so every tile origin is 32-byte aligned, as the tensor-core loads require.
  MUONREC_HOST_DEVICE int64_t a_offset() const { return 2 * static_cast<int64_t>(side_p) * ldx; }
  MUONREC_HOST_DEVICE int64_t b_offset() const { return a_offset() + 2 * static_cast<int64_t>(side_p) * ldg; }
  MUONREC_HOST_DEVICE int64_t stage_offset() const { return b_offset() + 2 * static_cast<int64_t>(side_p) * ldg; }
  MUONREC_HOST_DEVICE int64_t reduce_offset() const {
    return stage_offset() + 4 * kMuonFusedWarps * kMuonTile * kMuonTile;
  }
  MUONREC_HOST_DEVICE int64_t shared_bytes() const { return reduce_offset() + 4 * kMuonFusedWarps; }
};

inline int64_t muon_fused_shared_bytes(int64_t rows, int64_t cols) {
  return MuonFusedLayout(rows, cols).shared_bytes();
}

}  // namespace muonrec::kernels
