// Building blocks of the flash-style softmax attention kernels (attention_forward.cuh,
// attention_backward.cuh). Every kernel pairs a 64-row tile of "own" rows (queries in the forward
// and the dQ pass, keys in the dK/dV pass) with 64-row tiles of "other" rows it loops over, and does
// two small products per pair in fp32 on the CUDA cores:
//   scores  S[r][c]  = sum_d own[r][d] * other[c][d]        (tile_dot)
//   output  A[r][:] += sum_c score[r][c] * other2[c][:]      (tile_accumulate)
// The 256 threads form 16 row groups of 16 lanes: thread t owns tile rows 4*(t/16) + i (i < 4) and,
// in a 64-wide score tile, columns (t%16) + 16*j (j < 4). The 16 lanes that share rows are half a
// warp, so row maxima and sums are warp shuffles, and a warp owns 8 consecutive rows.
//
// Shared-memory layouts (all fp32, rows padded by 4 floats): a head tile is [64][bucket + 4] with
// zeros past the head dim and past the sequence, so products over the padded width need no bounds
// checks; a score tile is [64][68]. With row strides = 4 (mod 32) words, the float4 reads of 8
// consecutive rows by a quarter warp fall on distinct banks, and reads of one row are broadcasts.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cuda::attention_tile {

constexpr int kTile = 64;
constexpr int kThreads = 256;
constexpr int kRowsPerThread = 4;
constexpr int kLanesPerRow = 16;
constexpr int kColsPerThread = kTile / kLanesPerRow;
constexpr int kRowsPerWarp = 32 / kLanesPerRow * kRowsPerThread;
constexpr int kScoreStride = kTile + 4;
constexpr int kScoreFloats = kTile * kScoreStride;
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// A head tile for head dims up to kDimBucket (32, 64 or 128). A thread's share of an accumulator
// [64][bucket] is its 4 rows times kDimPerThread columns, taken kChunk consecutive floats at a time
// (one vector load) at chunk index lane + 16 * g: a quarter warp reads 8 consecutive chunks.
template <int kDimBucket>
struct HeadTile {
  static_assert(kDimBucket == 32 || kDimBucket == 64 || kDimBucket == 128, "head-dim bucket is 32, 64 or 128");
  static constexpr int kStride = kDimBucket + 4;
  static constexpr int kFloats = kTile * kStride;
  static constexpr int kDimPerThread = kDimBucket / kLanesPerRow;
  static constexpr int kChunk = kDimPerThread < 4 ? kDimPerThread : 4;
  __device__ static int column(int lane, int k) {
    return kChunk * (lane + kLanesPerRow * (k / kChunk)) + k % kChunk;
  }
};

// This thread's rows and lane (see the top of the file).
struct ThreadSlot {
  int row0, lane;
};
__device__ __forceinline__ ThreadSlot thread_slot() {
  return {kRowsPerThread * static_cast<int>(threadIdx.x / kLanesPerRow), static_cast<int>(threadIdx.x % kLanesPerRow)};
}
// One past the last tile row of this thread's warp: the bound of the rows a warp has to compute.
__device__ __forceinline__ int warp_row_end() { return static_cast<int>(threadIdx.x / 32 + 1) * kRowsPerWarp; }

// The tile's positions first..first+63 inside the sequence, rounded up to a multiple of 4: the
// columns of a score tile past it are 0, so tile_accumulate can stop there.
__device__ __forceinline__ int tile_extent4(int first, int seq) {
  return ((seq - first < kTile ? seq - first : kTile) + 3) & ~3;
}
// The keys of the tile at k0 that this warp's query rows can attend end there; on the causal
// diagonal (query tile = key tile) they end after the warp's last row.
__device__ __forceinline__ int attended_keys_end(int k0, int seq, bool causal_diagonal) {
  const int end = tile_extent4(k0, seq);
  return causal_diagonal && warp_row_end() < end ? warp_row_end() : end;
}

// The op's mask: query i attends key j when (j <= i or not causal) and key j is valid, and always
// attends itself (so no row is empty). Positions past the sequence attend and are attended by
// nothing.
__device__ __forceinline__ bool attends(int i, int j, bool key_valid, bool causal, int seq) {
  return i < seq && j < seq && (((j <= i || !causal) && key_valid) || j == i);
}

// Max and sum over the 16 lanes that share a row: xor offsets below 16 stay inside the half warp.
__device__ __forceinline__ float row_group_max(float value) {
  for (int offset = kLanesPerRow / 2; offset > 0; offset >>= 1)
    value = fmaxf(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}
__device__ __forceinline__ float row_group_sum(float value) {
  for (int offset = kLanesPerRow / 2; offset > 0; offset >>= 1) value += __shfl_xor_sync(0xffffffffu, value, offset);
  return value;
}

// Copies rows first_row..first_row+63 of one head into a head tile. Row r of the head starts at
// src + r * row_stride and has head_dim floats; rows past seq and columns past head_dim become 0.
// Each thread keeps one column (consecutive threads read consecutive floats: coalesced) and walks
// down the rows with one pointer, so that no per-row address stays live across the caller's loop.
template <int kDimBucket>
__device__ __forceinline__ void load_head_tile(float* tile, const float* __restrict__ src, int64_t row_stride,
                                               int first_row, int seq, int head_dim) {
  constexpr int kRowsPerPass = kThreads / kDimBucket;
  const int c = static_cast<int>(threadIdx.x) % kDimBucket, r0 = static_cast<int>(threadIdx.x) / kDimBucket;
  const bool in_head = c < head_dim;
  const float* from = src + (first_row + r0) * row_stride + c;
  float* to = tile + r0 * HeadTile<kDimBucket>::kStride + c;
#pragma unroll
  for (int pass = 0; pass < kTile / kRowsPerPass; ++pass) {
    *to = in_head && first_row + r0 + pass * kRowsPerPass < seq ? *from : 0.0f;
    from += kRowsPerPass * row_stride;
    to += kRowsPerPass * HeadTile<kDimBucket>::kStride;
  }
}

// The first 64 threads copy the valid flags of positions first..first+63 (0 past seq) into
// flags[64]; returns this thread's flag, for __syncthreads_or.
__device__ __forceinline__ bool load_valid_flags(float* flags, const float* __restrict__ valid, int first, int seq) {
  if (threadIdx.x >= kTile) return false;
  const int t = first + static_cast<int>(threadIdx.x);
  const float flag = t < seq ? valid[t] : 0.0f;
  flags[threadIdx.x] = flag;
  return flag != 0.0f;
}

__device__ __forceinline__ float component(const float4& v, int k) {
  return k == 0 ? v.x : k == 1 ? v.y : k == 2 ? v.z : v.w;
}

// acc[i][j] = sum over d < dim4 of own[row0 + i][d] * other[lane + 16 j][d], for two head tiles of
// the same bucket; dim4 is the head dim rounded up to 4 (the padding columns hold zeros).
template <int kStride>
__device__ __forceinline__ void tile_dot(const float* own, const float* other, int dim4, const ThreadSlot& slot,
                                         float (&acc)[kRowsPerThread][kColsPerThread]) {
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
    for (int j = 0; j < kColsPerThread; ++j) acc[i][j] = 0.0f;
  // Not unrolled: the 8 float4 loads of one step already feed 64 FMAs, and unrolling further only
  // raises register use (and so lowers the blocks per SM) with no gain.
#pragma unroll 1
  for (int d = 0; d < dim4; d += 4) {
    float4 a[kRowsPerThread], b[kColsPerThread];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) a[i] = *reinterpret_cast<const float4*>(own + (slot.row0 + i) * kStride + d);
#pragma unroll
    for (int j = 0; j < kColsPerThread; ++j)
      b[j] = *reinterpret_cast<const float4*>(other + (slot.lane + kLanesPerRow * j) * kStride + d);
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
      for (int j = 0; j < kColsPerThread; ++j) {
        acc[i][j] = fmaf(a[i].x, b[j].x, acc[i][j]);
        acc[i][j] = fmaf(a[i].y, b[j].y, acc[i][j]);
        acc[i][j] = fmaf(a[i].z, b[j].z, acc[i][j]);
        acc[i][j] = fmaf(a[i].w, b[j].w, acc[i][j]);
      }
  }
}

// kChunk consecutive floats from 4 * kChunk-byte aligned shared memory, as one vector load.
template <int kChunk>
__device__ __forceinline__ void load_chunk(const float* src, float* dst) {
  if constexpr (kChunk == 4) {
    const float4 v = *reinterpret_cast<const float4*>(src);
    dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
  } else {
    static_assert(kChunk == 2, "chunks of 2 or 4 floats");
    const float2 v = *reinterpret_cast<const float2*>(src);
    dst[0] = v.x, dst[1] = v.y;
  }
}

// acc[i][k] += sum over c in [begin, end) of score[row0 + i][c] * head[c][column(lane, k)], where
// score is a score tile and head a head tile. begin and end are multiples of 4; the caller passes a
// range outside which this warp's scores are all 0.
template <int kDimBucket>
__device__ __forceinline__ void tile_accumulate(const float* score, const float* head, int begin, int end,
                                                const ThreadSlot& slot,
                                                float (&acc)[kRowsPerThread][HeadTile<kDimBucket>::kDimPerThread]) {
  using Tile = HeadTile<kDimBucket>;
  for (int c = begin; c < end; c += 4) {
    float4 p[kRowsPerThread];
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i)
      p[i] = *reinterpret_cast<const float4*>(score + (slot.row0 + i) * kScoreStride + c);
#pragma unroll
    for (int cc = 0; cc < 4; ++cc) {
      float v[Tile::kDimPerThread];
#pragma unroll
      for (int k = 0; k < Tile::kDimPerThread; k += Tile::kChunk)
        load_chunk<Tile::kChunk>(head + (c + cc) * Tile::kStride + Tile::column(slot.lane, k), v + k);
#pragma unroll
      for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
        for (int k = 0; k < Tile::kDimPerThread; ++k) acc[i][k] = fmaf(component(p[i], cc), v[k], acc[i][k]);
    }
  }
}

template <int kDimBucket>
__device__ __forceinline__ void zero(float (&acc)[kRowsPerThread][HeadTile<kDimBucket>::kDimPerThread]) {
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i)
#pragma unroll
    for (int k = 0; k < HeadTile<kDimBucket>::kDimPerThread; ++k) acc[i][k] = 0.0f;
}

// Writes this thread's share of an accumulator for tile rows first_row.. to dst (row r of the head
// at dst + r * row_stride), skipping rows past seq and columns past head_dim.
template <int kDimBucket>
__device__ __forceinline__ void store_head_rows(const float (&acc)[kRowsPerThread][HeadTile<kDimBucket>::kDimPerThread],
                                                float* __restrict__ dst, int64_t row_stride, int first_row, int seq,
                                                int head_dim, const ThreadSlot& slot) {
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int row = first_row + slot.row0 + i;
    if (row >= seq) continue;
#pragma unroll
    for (int k = 0; k < HeadTile<kDimBucket>::kDimPerThread; ++k) {
      const int c = HeadTile<kDimBucket>::column(slot.lane, k);
      if (c < head_dim) dst[row * row_stride + c] = acc[i][k];
    }
  }
}

// Where the block's (batch, head) starts inside the packed tensors (blockIdx.x = b * heads + h).
struct HeadOffsets {
  int64_t width;  // H * Dh: row stride of out and dout; qkv rows are 3 * width
  int64_t qkv;    // (b, row 0, q of head h) in qkv; k and v follow at +width and +2 width
  int64_t out;    // (b, row 0, head h) in out and dout
  int64_t rows;   // (b, h, row 0) in the [B, H, T] statistics (lse, delta)
  int64_t valid;  // (b, row 0) in valid
};
__device__ __forceinline__ HeadOffsets head_offsets(int seq, int heads, int head_dim) {
  const int64_t bh = blockIdx.x, b = bh / heads, h = bh % heads, width = static_cast<int64_t>(heads) * head_dim;
  return {width, b * seq * 3 * width + h * head_dim, b * seq * width + h * head_dim, bh * seq, b * seq};
}

__host__ __device__ constexpr int tile_count(int seq) { return (seq + kTile - 1) / kTile; }

// Blocks per SM the kernels are compiled for (registers capped to fit). Head dims up to 64: as many
// as the shared memory allows (the forward's 70 KB three times, the backward's 87 and 105 KB twice);
// 128: one, which shared memory allows anyway.
template <int kDimBucket>
constexpr int kForwardBlocksPerSm = kDimBucket <= 64 ? 3 : 1;
template <int kDimBucket>
constexpr int kBackwardBlocksPerSm = kDimBucket <= 64 ? 2 : 1;

}  // namespace muonrec::kernels::cuda::attention_tile
