// Flash-style backward of the masked softmax attention, in two passes that recompute the
// probabilities P = exp(S - lse) tile by tile instead of reading a T x T matrix. With
// dP = dout V^T, delta_i = dout_i . out_i (= sum_j P_ij dP_ij) and dS = P (dP - delta) / sqrt(Dh):
//   dQ pass, one block per query tile, over key tiles:   dQ += dS K        (and writes delta)
//   dK/dV pass, one block per key tile, over query tiles: dV += P^T dout,  dK += dS^T Q
// Every output element has one owner block and sums in a fixed order: no atomics, deterministic.
// Building blocks and layouts: attention_tile.cuh.
#pragma once

#include "muonrec/kernels/cuda/attention_tile.cuh"

namespace muonrec::kernels::cuda::attention_tile {

// The query and dout tiles, one key and one value tile, dS of the current pair, the key valid flags.
template <int kDimBucket>
constexpr size_t backward_dq_shared_bytes() {
  return (4 * HeadTile<kDimBucket>::kFloats + kScoreFloats + kTile) * sizeof(float);
}

// The key and value tiles, one query and one dout tile, P^T and dS^T of the current pair, and the
// queries' lse and delta.
template <int kDimBucket>
constexpr size_t backward_dkv_shared_bytes() {
  return (4 * HeadTile<kDimBucket>::kFloats + 2 * kScoreFloats + 2 * kTile) * sizeof(float);
}

// Grid as the forward's. Writes the q block of dqkv and delta [B, H, T].
template <int kDimBucket>
__global__ void __launch_bounds__(kThreads, kBackwardBlocksPerSm<kDimBucket>)
    attention_backward_dq_kernel(const float* __restrict__ qkv, const float* __restrict__ valid,
                                 const float* __restrict__ out, const float* __restrict__ lse,
                                 const float* __restrict__ dout, float* __restrict__ dqkv, float* __restrict__ delta,
                                 int seq, int heads, int head_dim, float scale_log2, float scale, bool causal) {
  using Tile = HeadTile<kDimBucket>;
  extern __shared__ float4 attention_smem[];
  float* q_tile = reinterpret_cast<float*>(attention_smem);
  float* dout_tile = q_tile + Tile::kFloats;
  float* k_tile = dout_tile + Tile::kFloats;
  float* v_tile = k_tile + Tile::kFloats;
  float* ds_tile = v_tile + Tile::kFloats;
  float* key_valid = ds_tile + kScoreFloats;

  const HeadOffsets at = head_offsets(seq, heads, head_dim);
  const int tiles = tile_count(seq), q_index = tiles - 1 - static_cast<int>(blockIdx.y), q0 = q_index * kTile;
  const int64_t qkv_row = 3 * at.width;
  const ThreadSlot slot = thread_slot();
  const bool warp_has_rows = q0 + warp_row_end() - kRowsPerWarp < seq;
  const int dim4 = (head_dim + 3) & ~3;
  load_head_tile<kDimBucket>(q_tile, qkv + at.qkv, qkv_row, q0, seq, head_dim);
  load_head_tile<kDimBucket>(dout_tile, dout + at.out, at.width, q0, seq, head_dim);

  // This thread's rows: lse in base 2, and delta, summed by the row's 16 lanes straight from global
  // memory (coalesced) and saved for the dK/dV pass.
  float row_lse2[kRowsPerThread], row_delta[kRowsPerThread];
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int query = q0 + slot.row0 + i;
    float partial = 0.0f;
    if (query < seq) {
      const int64_t row = at.out + query * at.width;
      for (int c = slot.lane; c < head_dim; c += kLanesPerRow) partial = fmaf(dout[row + c], out[row + c], partial);
    }
    row_delta[i] = row_group_sum(partial);
    row_lse2[i] = query < seq ? lse[at.rows + query] * kLog2e : 0.0f;
    if (slot.lane == 0 && query < seq) delta[at.rows + query] = row_delta[i];
  }

  float acc[kRowsPerThread][Tile::kDimPerThread];
  zero<kDimBucket>(acc);
  const int key_tiles = causal ? q_index + 1 : tiles;
  for (int kt = 0; kt < key_tiles; ++kt) {
    const int k0 = kt * kTile;
    __syncthreads();  // the previous pair's readers of k_tile, v_tile and ds_tile are done
    load_head_tile<kDimBucket>(k_tile, qkv + at.qkv + at.width, qkv_row, k0, seq, head_dim);
    load_head_tile<kDimBucket>(v_tile, qkv + at.qkv + 2 * at.width, qkv_row, k0, seq, head_dim);
    // As in the forward: a tile of padding keys matters only on the diagonal.
    if (!__syncthreads_or(load_valid_flags(key_valid, valid + at.valid, k0, seq)) && kt != q_index) continue;
    if (warp_has_rows) {
      float s[kRowsPerThread][kColsPerThread], dp[kRowsPerThread][kColsPerThread];
      tile_dot<Tile::kStride>(q_tile, k_tile, dim4, slot, s);
      tile_dot<Tile::kStride>(dout_tile, v_tile, dim4, slot, dp);
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i) {
        const int query = q0 + slot.row0 + i;
#pragma unroll
        for (int j = 0; j < kColsPerThread; ++j) {
          const int key = slot.lane + kLanesPerRow * j;
          const float p = attends(query, k0 + key, key_valid[key] != 0.0f, causal, seq)
                              ? exp2f(s[i][j] * scale_log2 - row_lse2[i])
                              : 0.0f;
          ds_tile[(slot.row0 + i) * kScoreStride + key] = p * (dp[i][j] - row_delta[i]) * scale;
        }
      }
    }
    __syncthreads();  // ds_tile is complete
    if (warp_has_rows)
      tile_accumulate<kDimBucket>(ds_tile, k_tile, 0, attended_keys_end(k0, seq, causal && kt == q_index), slot, acc);
  }
  store_head_rows<kDimBucket>(acc, dqkv + at.qkv, qkv_row, q0, seq, head_dim, slot);
}

// Grid: x = batch * heads, y = key tiles, earliest first (under the causal mask they are attended
// by the most query tiles). Reads delta from the dQ pass; writes the k and v blocks of dqkv.
template <int kDimBucket>
__global__ void __launch_bounds__(kThreads, kBackwardBlocksPerSm<kDimBucket>)
    attention_backward_dkv_kernel(const float* __restrict__ qkv, const float* __restrict__ valid,
                                  const float* __restrict__ lse, const float* __restrict__ delta,
                                  const float* __restrict__ dout, float* __restrict__ dqkv, int seq, int heads,
                                  int head_dim, float scale_log2, float scale, bool causal) {
  using Tile = HeadTile<kDimBucket>;
  extern __shared__ float4 attention_smem[];
  float* k_tile = reinterpret_cast<float*>(attention_smem);
  float* v_tile = k_tile + Tile::kFloats;
  float* q_tile = v_tile + Tile::kFloats;
  float* dout_tile = q_tile + Tile::kFloats;
  float* p_tile = dout_tile + Tile::kFloats;
  float* ds_tile = p_tile + kScoreFloats;
  float* query_lse2 = ds_tile + kScoreFloats;
  float* query_delta = query_lse2 + kTile;

  const HeadOffsets at = head_offsets(seq, heads, head_dim);
  const int tiles = tile_count(seq), k_index = static_cast<int>(blockIdx.y), k0 = k_index * kTile;
  const int64_t qkv_row = 3 * at.width;
  const ThreadSlot slot = thread_slot();
  const bool warp_has_rows = k0 + warp_row_end() - kRowsPerWarp < seq;
  const int dim4 = (head_dim + 3) & ~3;
  load_head_tile<kDimBucket>(k_tile, qkv + at.qkv + at.width, qkv_row, k0, seq, head_dim);
  load_head_tile<kDimBucket>(v_tile, qkv + at.qkv + 2 * at.width, qkv_row, k0, seq, head_dim);
  bool key_valid[kRowsPerThread];
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int key = k0 + slot.row0 + i;
    key_valid[i] = key < seq && valid[at.valid + key] != 0.0f;
  }
  // A tile of padding keys is attended only by each key's own query, in the diagonal query tile.
  // The barrier also publishes the key and value tiles.
  const int own = k0 + static_cast<int>(threadIdx.x);
  const bool any_key_valid = __syncthreads_or(threadIdx.x < kTile && own < seq && valid[at.valid + own] != 0.0f);

  float dk[kRowsPerThread][Tile::kDimPerThread], dv[kRowsPerThread][Tile::kDimPerThread];
  zero<kDimBucket>(dk);
  zero<kDimBucket>(dv);
  // Under the causal mask the query tiles before the key tile attend none of its keys.
  for (int qt = causal ? k_index : 0; qt < tiles; ++qt) {
    if (!any_key_valid && qt != k_index) continue;
    const int q0 = qt * kTile;
    __syncthreads();  // the previous pair's readers of the query-side tiles are done
    load_head_tile<kDimBucket>(q_tile, qkv + at.qkv, qkv_row, q0, seq, head_dim);
    load_head_tile<kDimBucket>(dout_tile, dout + at.out, at.width, q0, seq, head_dim);
    if (threadIdx.x < kTile) {
      const int query = q0 + static_cast<int>(threadIdx.x);
      query_lse2[threadIdx.x] = query < seq ? lse[at.rows + query] * kLog2e : 0.0f;
      query_delta[threadIdx.x] = query < seq ? delta[at.rows + query] : 0.0f;
    }
    __syncthreads();  // the query-side tiles are loaded
    if (warp_has_rows) {
      // Transposed scores: row = this thread's key, column = query.
      float s[kRowsPerThread][kColsPerThread], dp[kRowsPerThread][kColsPerThread];
      tile_dot<Tile::kStride>(k_tile, q_tile, dim4, slot, s);
      tile_dot<Tile::kStride>(v_tile, dout_tile, dim4, slot, dp);
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i) {
        const int key = k0 + slot.row0 + i;
#pragma unroll
        for (int j = 0; j < kColsPerThread; ++j) {
          const int query = slot.lane + kLanesPerRow * j;
          const float p = attends(q0 + query, key, key_valid[i], causal, seq)
                              ? exp2f(s[i][j] * scale_log2 - query_lse2[query])
                              : 0.0f;
          const int at_score = (slot.row0 + i) * kScoreStride + query;
          p_tile[at_score] = p;
          ds_tile[at_score] = p * (dp[i][j] - query_delta[query]) * scale;
        }
      }
    }
    __syncthreads();  // p_tile and ds_tile are complete
    if (warp_has_rows) {
      // P and dS are 0 for queries past the sequence and, on the causal diagonal, for queries
      // before this warp's first key.
      const int begin = causal && qt == k_index ? warp_row_end() - kRowsPerWarp : 0;
      const int end = tile_extent4(q0, seq);
      tile_accumulate<kDimBucket>(p_tile, dout_tile, begin, end, slot, dv);
      tile_accumulate<kDimBucket>(ds_tile, q_tile, begin, end, slot, dk);
    }
  }
  store_head_rows<kDimBucket>(dk, dqkv + at.qkv + at.width, qkv_row, k0, seq, head_dim, slot);
  store_head_rows<kDimBucket>(dv, dqkv + at.qkv + 2 * at.width, qkv_row, k0, seq, head_dim, slot);
}

}  // namespace muonrec::kernels::cuda::attention_tile
