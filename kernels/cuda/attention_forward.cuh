// Flash-style forward of the masked softmax attention: one block per (query tile, batch * head)
// streams the key/value tiles through shared memory with an online softmax, so no T x T matrix
// reaches global memory; it writes the output and the row log-sum-exp the backward recomputes the
// probabilities from. Building blocks and layouts: attention_tile.cuh.
#pragma once

#include "muonrec/kernels/cuda/attention_tile.cuh"

namespace muonrec::kernels::cuda::attention_tile {

// The query, key and value tiles, the probabilities of the current tile pair, the key valid flags.
template <int kDimBucket>
constexpr size_t forward_shared_bytes() {
  return (3 * HeadTile<kDimBucket>::kFloats + kScoreFloats + kTile) * sizeof(float);
}

// Grid: x = batch * heads, y = query tiles, latest first (under the causal mask they have the most
// key tiles, so they should start first). scale_log2 = log2(e) / sqrt(head_dim): the softmax runs in
// base 2, and lse is converted back to the natural log.
template <int kDimBucket>
__global__ void __launch_bounds__(kThreads, kForwardBlocksPerSm<kDimBucket>)
    attention_forward_kernel(const float* __restrict__ qkv, const float* __restrict__ valid, float* __restrict__ out,
                             float* __restrict__ lse, int seq, int heads, int head_dim, float scale_log2, bool causal) {
  using Tile = HeadTile<kDimBucket>;
  extern __shared__ float4 attention_smem[];
  float* q_tile = reinterpret_cast<float*>(attention_smem);
  float* k_tile = q_tile + Tile::kFloats;
  float* v_tile = k_tile + Tile::kFloats;
  float* p_tile = v_tile + Tile::kFloats;
  float* key_valid = p_tile + kScoreFloats;

  const HeadOffsets at = head_offsets(seq, heads, head_dim);
  const int tiles = tile_count(seq), q_index = tiles - 1 - static_cast<int>(blockIdx.y), q0 = q_index * kTile;
  const int64_t qkv_row = 3 * at.width;
  const ThreadSlot slot = thread_slot();
  // In the last tile, warps whose rows all lie past the sequence skip the arithmetic (they still
  // share the loads and barriers).
  const bool warp_has_rows = q0 + warp_row_end() - kRowsPerWarp < seq;
  const int dim4 = (head_dim + 3) & ~3;
  load_head_tile<kDimBucket>(q_tile, qkv + at.qkv, qkv_row, q0, seq, head_dim);

  // Per row: the running max of the base-2 scores, this thread's share of the running sum of
  // exp2(score - max), and the unnormalised output, rescaled whenever the max grows.
  float row_max[kRowsPerThread], row_sum[kRowsPerThread], acc[kRowsPerThread][Tile::kDimPerThread];
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) row_max[i] = -INFINITY, row_sum[i] = 0.0f;
  zero<kDimBucket>(acc);

  // Under the causal mask the key tiles after the query tile are fully masked.
  const int key_tiles = causal ? q_index + 1 : tiles;
  for (int kt = 0; kt < key_tiles; ++kt) {
    const int k0 = kt * kTile;
    __syncthreads();  // the previous pair's readers of k_tile, v_tile and p_tile are done
    load_head_tile<kDimBucket>(k_tile, qkv + at.qkv + at.width, qkv_row, k0, seq, head_dim);
    load_head_tile<kDimBucket>(v_tile, qkv + at.qkv + 2 * at.width, qkv_row, k0, seq, head_dim);
    // A tile of padding keys is attended only by each key's own query, so only the diagonal tile
    // needs it. The barrier also publishes the tiles.
    if (!__syncthreads_or(load_valid_flags(key_valid, valid + at.valid, k0, seq)) && kt != q_index) continue;
    if (warp_has_rows) {
      float s[kRowsPerThread][kColsPerThread];
      tile_dot<Tile::kStride>(q_tile, k_tile, dim4, slot, s);
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i) {
        const int query = q0 + slot.row0 + i;
        float tile_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < kColsPerThread; ++j) {
          const int key = slot.lane + kLanesPerRow * j;
          s[i][j] = attends(query, k0 + key, key_valid[key] != 0.0f, causal, seq) ? s[i][j] * scale_log2 : -INFINITY;
          tile_max = fmaxf(tile_max, s[i][j]);
        }
        const float new_max = fmaxf(row_max[i], row_group_max(tile_max));
        // A row that has attended nothing yet (only possible past the sequence) keeps a max of
        // -inf; subtracting 0 instead keeps every exp2 at 0 rather than NaN.
        const float base = new_max == -INFINITY ? 0.0f : new_max;
        const float rescale = exp2f(row_max[i] - base);
        row_max[i] = new_max;
        row_sum[i] *= rescale;
#pragma unroll
        for (int k = 0; k < Tile::kDimPerThread; ++k) acc[i][k] *= rescale;
#pragma unroll
        for (int j = 0; j < kColsPerThread; ++j) {
          const float p = exp2f(s[i][j] - base);
          row_sum[i] += p;
          p_tile[(slot.row0 + i) * kScoreStride + slot.lane + kLanesPerRow * j] = p;
        }
      }
    }
    __syncthreads();  // p_tile is complete
    if (warp_has_rows)
      tile_accumulate<kDimBucket>(p_tile, v_tile, 0, attended_keys_end(k0, seq, causal && kt == q_index), slot, acc);
  }
  if (!warp_has_rows) return;

#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    // At least 1 for a row inside the sequence: its maximum contributes exp2(0).
    const float total = row_group_sum(row_sum[i]);
    const float inv = 1.0f / total;
#pragma unroll
    for (int k = 0; k < Tile::kDimPerThread; ++k) acc[i][k] *= inv;
    const int query = q0 + slot.row0 + i;
    if (slot.lane == 0 && query < seq) lse[at.rows + query] = (row_max[i] + log2f(total)) * kLn2;
  }
  store_head_rows<kDimBucket>(acc, out + at.out, at.width, q0, seq, head_dim, slot);
}

}  // namespace muonrec::kernels::cuda::attention_tile
