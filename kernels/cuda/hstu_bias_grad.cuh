// Deterministic per-block sums of the HSTU score gradients dz for the relative-bias gradients
// (kernels/cuda/hstu_attention.cu): along the diagonals j - i of a tile (position bias), and into
// per-warp histograms over the time buckets (time bias). Each sum has one writer and a fixed order,
// so the results are identical bit for bit on every run; the terms have both signs and many cancel,
// hence double.
#pragma once

#include <cstdint>

#include "muonrec/kernels/cuda/hstu_tile.cuh"

namespace muonrec::kernels::cuda::hstu {

// dz_t is a kTile x kTile score-gradient tile stored key-major (dz of query q0+i, key k0+j at
// dz_t[j * kScorePitch + i], 0 where masked). Thread t < 2*kTile-1 walks the diagonal
// j - i = t - (kTile-1) and adds its sum to offset_partial[j - i + seq - 1] for the sequence
// offsets j - i in [-(seq-1), 0]; the others are masked (j > i) or lie only in rows past the end
// (zero). Between two calls the block must synchronise (an offset may belong to another thread in
// the next tile).
template <class Shape>
__device__ void add_diagonal_sums(const float* dz_t, double* offset_partial, int q0, int k0, int seq) {
  constexpr int kTile = Shape::kTile;
  static_assert((kTile & (kTile - 1)) == 0, "the walk wraps around a power-of-two tile");
  const int t = threadIdx.x;
  if (t >= 2 * kTile - 1) return;
  const int shift = t - (kTile - 1);
  const int offset = k0 - q0 + shift;
  if (offset > 0 || offset < -(seq - 1)) return;
  double sum = 0.0;
  for (int s = 0; s < kTile; ++s) {
    // Each thread starts its walk at a different row: neighbouring threads then read addresses
    // 2*kScorePitch+1 = 9 (mod 32) words apart, 32 distinct banks.
    const int i = (s + t) & (kTile - 1), j = i + shift;
    if (j >= 0 && j < kTile) sum += dz_t[j * Shape::kScorePitch + i];
  }
  offset_partial[offset + seq - 1] += sum;
}

// Adds `value` to hist[key] for each lane of the warp whose key is not negative (all 32 lanes call
// it). Lanes with equal keys are summed by the lowest of them in lane order, from `stash` (32 floats
// of this warp), so each histogram entry has one writer and a fixed order of additions.
__device__ __forceinline__ void warp_histogram_add(double* hist, float* stash, int key, float value) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const unsigned peers = __match_any_sync(0xffffffffu, key);
  stash[lane] = value;
  __syncwarp();
  if (key >= 0 && lane == __ffs(peers) - 1) {
    double sum = 0.0;
    for (unsigned rest = peers; rest != 0; rest &= rest - 1) sum += stash[__ffs(rest) - 1];
    hist[key] += sum;
  }
  __syncwarp();  // the stash is rewritten by the next call, and hist[key] may be read by another lane
}

}  // namespace muonrec::kernels::cuda::hstu
