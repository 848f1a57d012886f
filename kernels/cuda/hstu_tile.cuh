// Tiling mechanics of the HSTU attention kernels (kernels/cuda/hstu_attention.cu): tile shapes, the
// load of a tile of sequence rows into shared memory, and the two register-tiled products the
// kernels are made of.
//
// A block has 16 x 16 threads and works on kTile x kTile tiles of (query, key) pairs. In every
// product thread (ty, tx) owns the kRows contiguous rows ty*kRows.. (read as one float4 or float2),
// so a warp owns 2*kRows consecutive rows: a warp whose rows all lie past the end of the sequence
// skips the arithmetic of a partial tile. Columns are strided by 16 for scores (tx, tx+16, ..) and
// contiguous in runs of kVec for head-dim outputs; with the pitches below, every shared-memory
// read of the inner loops is free of bank conflicts and the reads of a warp use whole wavefronts.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cuda::hstu {

constexpr int kSide = 16;
constexpr int kThreads = kSide * kSide;
constexpr int kWarps = kThreads / 32;

// kTileArg queries (or keys) per tile; head dims up to kHeadDimArg (columns from head_dim up are
// zero in shared memory, so products over the bucket equal products over head_dim).
template <int kTileArg, int kHeadDimArg>
struct TileShape {
  static constexpr int kTile = kTileArg;
  static constexpr int kHeadDim = kHeadDimArg;
  static constexpr int kRows = kTile / kSide;  // product rows per thread
  static constexpr int kCols = kTile / kSide;  // score columns per thread: tx + 16 e
  // Head-dim columns per thread, in kDimGroups runs of kVec contiguous columns (a float4 when the
  // bucket allows): run g starts at column kVec * (tx + 16 g).
  static constexpr int kDimCols = kHeadDim / kSide;
  static constexpr int kVec = kDimCols < 4 ? kDimCols : 4;
  static constexpr int kDimGroups = kDimCols / kVec;
  // Row tiles [row][c]: a pitch of 4 mod 32 words keeps rows 16-byte aligned and puts the float4 at
  // the same column of 8 consecutive rows in 8 distinct bank quads.
  static constexpr int kPitch = kHeadDim + 4;
  // Score tiles [k][m]: the same for vectors along m.
  static constexpr int kScorePitch = kTile + 4;
  static constexpr int kRowFloats = kTile * kPitch;
  static constexpr int kScoreFloats = kTile * kScorePitch;
  // Two blocks per SM (16 warps) hide the shared-memory latency; that caps registers at 128.
  static constexpr int kMinBlocksPerSm = kHeadDim <= 64 ? 2 : 1;
  static_assert(kRows == 2 || kRows == 4, "rows are read as float2 or float4");
  static_assert(kHeadDim % kSide == 0, "head-dim buckets are multiples of 16");
  static_assert(2 * kTile - 1 <= kThreads, "one thread per tile row and per tile diagonal");
  // Every region carved out of shared memory is a multiple of 4 floats: the next one stays aligned.
  static_assert(kRowFloats % 4 == 0 && kScoreFloats % 4 == 0, "alignment");
};

__device__ __forceinline__ int thread_column() { return static_cast<int>(threadIdx.x) % kSide; }
template <class Shape>
__device__ __forceinline__ int thread_first_row() {
  return static_cast<int>(threadIdx.x) / kSide * Shape::kRows;
}
template <class Shape>
__device__ __forceinline__ int warp_first_row() {
  return static_cast<int>(threadIdx.x) / 32 * 2 * Shape::kRows;
}
// Head-dim column of run g, element v of this thread.
template <class Shape>
__device__ __forceinline__ int dim_column(int g, int v) {
  return Shape::kVec * (thread_column() + kSide * g) + v;
}

__device__ __forceinline__ void load_vector(const float* p, float (&v)[4]) {
  const float4 x = *reinterpret_cast<const float4*>(p);
  v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
}
__device__ __forceinline__ void load_vector(const float* p, float (&v)[2]) {
  const float2 x = *reinterpret_cast<const float2*>(p);
  v[0] = x.x, v[1] = x.y;
}
__device__ __forceinline__ void load_vector(const float* p, float (&v)[1]) { v[0] = *p; }
__device__ __forceinline__ void store_vector(float* p, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store_vector(float* p, const float (&v)[2]) {
  *reinterpret_cast<float2*>(p) = make_float2(v[0], v[1]);
}

// Rows row0.. of a matrix in global memory (src points at row0's first column of this head, rows
// `stride` floats apart) into the row tile dst[t * kPitch + c], t < kTile, c < kHeadDim. Rows
// t >= rows, rows with mask[t] == 0 (when a mask is given) and columns c >= head_dim are zero, so
// padding never reaches a product, even when its values are not finite. flags, when given, gets 1
// for the rows kept and 0 for the others.
template <class Shape>
__device__ void load_rows(float* dst, const float* src, int64_t stride, int rows, const float* mask, int head_dim,
                          float* flags) {
  for (int e = threadIdx.x; e < Shape::kTile * Shape::kHeadDim; e += kThreads) {
    const int t = e / Shape::kHeadDim, c = e % Shape::kHeadDim;
    const bool kept = t < rows && (mask == nullptr || mask[t] != 0.0f);
    dst[t * Shape::kPitch + c] = kept && c < head_dim ? src[t * stride + c] : 0.0f;
    if (flags != nullptr && c == 0) flags[t] = kept ? 1.0f : 0.0f;
  }
}

// Dot products of rows: acc[r][e] += a_r . b_e over the first k_count columns (a multiple of 4), for
// the thread's rows r of tile a (pointing at its first row) and its score columns e < kActive of
// tile b (pointing at row tx). Four columns at a time: one float4 per row and per column.
template <class Shape, int kActive>
__device__ __forceinline__ void accumulate_row_dots(float (&acc)[Shape::kRows][Shape::kCols], const float* a,
                                                    const float* b, int k_count) {
#pragma unroll 1  // one step already has kRows*kActive*4 independent products
  for (int k = 0; k < k_count; k += 4) {
    float av[Shape::kRows][4], bv[kActive][4];
#pragma unroll
    for (int r = 0; r < Shape::kRows; ++r) load_vector(a + r * Shape::kPitch + k, av[r]);
#pragma unroll
    for (int e = 0; e < kActive; ++e) load_vector(b + e * kSide * Shape::kPitch + k, bv[e]);
#pragma unroll
    for (int v = 0; v < 4; ++v)
#pragma unroll
      for (int r = 0; r < Shape::kRows; ++r)
#pragma unroll
        for (int e = 0; e < kActive; ++e) acc[r][e] = fmaf(av[r][v], bv[e][v], acc[r][e]);
  }
}

// accumulate_row_dots over the score columns below `columns` (the others keep their value): a
// partial tile of at most 16 rows in b costs a quarter of a full one.
template <class Shape>
__device__ __forceinline__ void accumulate_row_dots_upto(float (&acc)[Shape::kRows][Shape::kCols], const float* a,
                                                         const float* b, int k_count, int columns) {
  if (columns <= kSide)
    accumulate_row_dots<Shape, 1>(acc, a, b, k_count);
  else
    accumulate_row_dots<Shape, Shape::kCols>(acc, a, b, k_count);
}

// Score-weighted sums of rows: acc[r][g*kVec + v] += sum over k < k_count of
// s_t[k * kScorePitch + r] * x[k * kPitch + dim_column(g, v)], for a score tile s_t stored [k][m]
// (pointing at the thread's first row) and a row tile x.
template <class Shape>
__device__ __forceinline__ void accumulate_weighted_rows(float (&acc)[Shape::kRows][Shape::kDimCols], const float* s_t,
                                                         const float* x, int k_count) {
  x += dim_column<Shape>(0, 0);
#pragma unroll 2
  for (int k = 0; k < k_count; ++k) {
    float sv[Shape::kRows];
    load_vector(s_t + k * Shape::kScorePitch, sv);
#pragma unroll
    for (int g = 0; g < Shape::kDimGroups; ++g) {
      float xv[Shape::kVec];
      load_vector(x + k * Shape::kPitch + g * kSide * Shape::kVec, xv);
#pragma unroll
      for (int r = 0; r < Shape::kRows; ++r)
#pragma unroll
        for (int v = 0; v < Shape::kVec; ++v)
          acc[r][g * Shape::kVec + v] = fmaf(sv[r], xv[v], acc[r][g * Shape::kVec + v]);
    }
  }
}

// Writes rows row0 + thread rows (< seq) and columns < head_dim of a thread's head-dim accumulator
// to dst (row t at dst + t * stride).
template <class Shape>
__device__ void write_rows(float* dst, int64_t stride, const float (&acc)[Shape::kRows][Shape::kDimCols], int row0,
                           int seq, int head_dim) {
  const int m0 = thread_first_row<Shape>();
#pragma unroll
  for (int r = 0; r < Shape::kRows; ++r) {
    const int t = row0 + m0 + r;
    if (t >= seq) continue;
#pragma unroll
    for (int g = 0; g < Shape::kDimGroups; ++g)
#pragma unroll
      for (int v = 0; v < Shape::kVec; ++v) {
        const int c = dim_column<Shape>(g, v);
        if (c < head_dim) dst[t * stride + c] = acc[r][g * Shape::kVec + v];
      }
  }
}

// Stores score column e of a thread's register tile (its kRows rows) at p, a [k][m] tile position.
template <class Shape>
__device__ __forceinline__ void store_score_column(float* p, const float (&tile)[Shape::kRows][Shape::kCols], int e) {
  float v[Shape::kRows];
#pragma unroll
  for (int r = 0; r < Shape::kRows; ++r) v[r] = tile[r][e];
  store_vector(p, v);
}

}  // namespace muonrec::kernels::cuda::hstu
