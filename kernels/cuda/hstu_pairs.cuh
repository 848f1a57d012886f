// What the HSTU attention kernels (kernels/cuda/hstu_attention.cu) compute for one (query, key)
// pair and where their blocks sit: the op's inputs, the block-to-tile mapping, the visibility mask,
// the relative bias, and the SiLU weight with its gradient (reference/MODELS.md, HSTU).
#pragma once

#include <cstdint>

namespace muonrec::kernels::cuda::hstu {

enum UvqkBlock : int { kU = 0, kV = 1, kQ = 2, kK = 3 };

// The op's inputs and sizes, shared by the three kernels.
struct HstuInputs {
  const float* uvqk;
  const float* valid;
  const float* pos_bias;
  const float* time_bias;       // null without timestamps
  const int32_t* time_buckets;  // null without timestamps
  int64_t batch_heads;
  int seq, heads, head_dim;
  float inv_seq;

  __device__ int64_t width() const { return static_cast<int64_t>(heads) * head_dim; }
  // Head h's first column of block `part` in row t of sequence b (rows 4 * width apart).
  __device__ const float* uvqk_row(int64_t b, int h, UvqkBlock part, int t) const {
    return uvqk + (b * seq + t) * 4 * width() + part * width() + static_cast<int64_t>(h) * head_dim;
  }
};

// Blocks are numbered tile-major, (b, h) fastest; the tiles with the most partners are issued first
// so that the short ones fill the tail of the grid.
struct BlockTile {
  int64_t b;
  int h;
  int tile;
};
__device__ __forceinline__ BlockTile block_tile(const HstuInputs& in, int num_tiles, bool last_tile_first) {
  const int64_t bh = blockIdx.x % in.batch_heads;
  const int rank = static_cast<int>(blockIdx.x / in.batch_heads);
  return BlockTile{bh / in.heads, static_cast<int>(bh % in.heads), last_tile_first ? num_tiles - 1 - rank : rank};
}

// Query i sees key j when i is inside the sequence, j <= i, and key j is a kept (valid) key.
__device__ __forceinline__ bool pair_visible(const HstuInputs& in, int i, int j, float key_kept) {
  return i < in.seq && j <= i && key_kept != 0.0f;
}

// The relative bias of one sequence: pos_bias centred on offset 0 and that sequence's time buckets.
struct RelativeBias {
  const float* pos_centre;      // pos_bias + T - 1: indexed by j - i
  const float* time_bias;       // null without timestamps
  const int32_t* time_buckets;  // [T, T] of this sequence
  int seq;

  // z_ij = qk + pos_bias[j-i+T-1] + time_bias[bucket_ij] for a visible pair; `bucket` gets
  // bucket_ij, or -1 without timestamps.
  __device__ __forceinline__ float score(int i, int j, float qk, int& bucket) const {
    float bias = __ldg(pos_centre + (j - i));
    bucket = -1;
    if (time_bias != nullptr) {
      bucket = __ldg(time_buckets + static_cast<int64_t>(i) * seq + j);
      bias += __ldg(time_bias + bucket);
    }
    return qk + bias;
  }
};
__device__ __forceinline__ RelativeBias relative_bias(const HstuInputs& in, int64_t b) {
  return RelativeBias{in.pos_bias + in.seq - 1, in.time_bias,
                      in.time_buckets ? in.time_buckets + b * in.seq * in.seq : nullptr, in.seq};
}

__device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

// w = SiLU(z) / T (the forward) ...
__device__ __forceinline__ float pair_weight(float z, float inv_seq) { return z * sigmoid(z) * inv_seq; }

// ... and, for the backward, with dz = dw SiLU'(z) / T, SiLU'(z) = s (1 + z (1 - s)), s = sigmoid(z).
struct PairGrad {
  float w, dz;
};
__device__ __forceinline__ PairGrad pair_grad(float z, float dw, float inv_seq) {
  const float s = sigmoid(z);
  return PairGrad{z * s * inv_seq, dw * s * (1.0f + z * (1.0f - s)) * inv_seq};
}

// Whether the key tile has a valid key, for every thread of the block (a barrier). A tile without
// one adds nothing to any sum, and left padding often fills whole tiles: they are skipped.
__device__ __forceinline__ bool tile_has_valid_key(const float* valid_tile, int rows) {
  const int t = threadIdx.x;
  return __syncthreads_or(t < rows && valid_tile[t] != 0.0f) != 0;
}

// The row dots run over head_dim rounded up to 4 (the columns above are zero in the tiles).
__device__ __forceinline__ int dot_length(const HstuInputs& in) { return (in.head_dim + 3) / 4 * 4; }

}  // namespace muonrec::kernels::cuda::hstu
