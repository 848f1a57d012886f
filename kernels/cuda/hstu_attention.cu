#include "muonrec/kernels/cuda/hstu_attention.h"

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/hstu_bias_grad.cuh"
#include "muonrec/kernels/cuda/hstu_pairs.cuh"
#include "muonrec/kernels/cuda/hstu_tile.cuh"
#include "muonrec/kernels/hstu_time_bucket.h"

// Flash-style HSTU attention in fp32: a block owns one tile of queries (or keys) of one (sequence,
// head), keeps it in shared memory and streams the tiles of keys (or queries) it interacts with,
// recomputing the scores and the relative bias on the fly; no [T, T] matrix ever reaches global
// memory. The causal mask skips the tiles above the diagonal. The backward runs two sweeps so that
// every gradient has one owner and a fixed order of additions (no atomics, deterministic): a
// query-major sweep for dq and the bias gradients, a key-major sweep for dk and dv. Each recomputes
// the scores, which costs one more T^2 d product than a sweep with atomics.
namespace muonrec::kernels::cuda {
namespace hstu {
namespace {

// ---- forward ----------------------------------------------------------------------------------

template <class Shape>
size_t forward_shared_bytes() {
  return (3 * Shape::kRowFloats + Shape::kScoreFloats + Shape::kTile) * sizeof(float);
}

// One block per (b, h, query tile): out_i = sum over key tiles kt <= tile of W(i, kt) V(kt).
template <class Shape>
__global__ void __launch_bounds__(kThreads, Shape::kMinBlocksPerSm) forward_kernel(HstuInputs in, float* out) {
  constexpr int kTile = Shape::kTile, R = Shape::kRows, C = Shape::kCols;
  extern __shared__ float4 shared_f4[];
  float* q_n = reinterpret_cast<float*>(shared_f4);  // [kTile][kPitch]: the query tile
  float* k_n = q_n + Shape::kRowFloats;              // [kTile][kPitch]: the key tile
  float* v_n = k_n + Shape::kRowFloats;              // [kTile][kPitch]: its values
  float* w_t = v_n + Shape::kRowFloats;              // [kTile][kScorePitch]: weights, key-major
  float* key_kept = w_t + Shape::kScoreFloats;       // [kTile]: 1 for an in-range valid key

  const int num_tiles = (in.seq + kTile - 1) / kTile;
  const BlockTile bt = block_tile(in, num_tiles, true);
  const RelativeBias bias = relative_bias(in, bt.b);
  const int q0 = bt.tile * kTile, q_rows = min(kTile, in.seq - q0);
  const int64_t stride = 4 * in.width();
  const int tx = thread_column(), m0 = thread_first_row<Shape>();
  const bool warp_has_rows = warp_first_row<Shape>() < q_rows;
  load_rows<Shape>(q_n, in.uvqk_row(bt.b, bt.h, kQ, q0), stride, q_rows, nullptr, in.head_dim, nullptr);

  float acc[R][Shape::kDimCols] = {};
  for (int kt = 0; kt <= bt.tile; ++kt) {
    const int k0 = kt * kTile, k_rows = min(kTile, in.seq - k0);
    const float* valid_tile = in.valid + bt.b * in.seq + k0;
    __syncthreads();  // the previous key tile and weights are no longer read
    load_rows<Shape>(k_n, in.uvqk_row(bt.b, bt.h, kK, k0), stride, k_rows, valid_tile, in.head_dim, key_kept);
    load_rows<Shape>(v_n, in.uvqk_row(bt.b, bt.h, kV, k0), stride, k_rows, valid_tile, in.head_dim, nullptr);
    if (!tile_has_valid_key(valid_tile, k_rows)) continue;  // block-uniform, and a barrier
    // Warp-uniform: the rows of this warp are all past the end.
    if (!warp_has_rows) continue;

    float s[R][C] = {};
    accumulate_row_dots_upto<Shape>(s, q_n + m0 * Shape::kPitch, k_n + tx * Shape::kPitch, dot_length(in), k_rows);
#pragma unroll
    for (int e = 0; e < C; ++e) {
      const int jl = tx + kSide * e;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int i = q0 + m0 + r, j = k0 + jl;
        float w = 0.0f;  // masked pairs are 0 by selection, never by product (padding may be NaN)
        if (pair_visible(in, i, j, key_kept[jl])) {
          int bucket;
          const float z = bias.score(i, j, s[r][e], bucket);
          w = pair_weight(z, in.inv_seq);
        }
        s[r][e] = w;
      }
      store_score_column<Shape>(w_t + jl * Shape::kScorePitch + m0, s, e);
    }
    __syncwarp();  // a warp reads back only the weight rows its own lanes wrote
    accumulate_weighted_rows<Shape>(acc, w_t + m0, v_n, k_rows);
  }
  write_rows<Shape>(out + bt.b * in.seq * in.width() + static_cast<int64_t>(bt.h) * in.head_dim, in.width(), acc, q0,
                    in.seq, in.head_dim);
}

// ---- backward, query-major sweep: dq, the u block, bias-gradient partials ----------------------

template <class Shape>
size_t backward_query_shared_bytes(int64_t time_columns) {
  return (4 * Shape::kRowFloats + Shape::kScoreFloats + Shape::kTile + kWarps * 32) * sizeof(float) +
         static_cast<size_t>(kWarps * time_columns) * sizeof(double);
}

// One block per (b, h, query tile): dq_i = sum over key tiles of dZ(i, kt) K(kt); zeroes du_i. Its
// row of bias_partial gets the block's sums of dz per offset j - i (columns 0..T-1 for offsets
// -(T-1)..0) and, when time_columns > 0, per time bucket (columns T..T+time_columns-1).
template <class Shape>
__global__ void __launch_bounds__(kThreads, Shape::kMinBlocksPerSm)
    backward_query_kernel(HstuInputs in, const float* dout, float* duvqk, double* bias_partial, int time_columns) {
  constexpr int kTile = Shape::kTile, R = Shape::kRows, C = Shape::kCols;
  extern __shared__ float4 shared_f4[];
  float* q_n = reinterpret_cast<float*>(shared_f4);  // [kTile][kPitch]: the query tile
  float* dout_n = q_n + Shape::kRowFloats;           // [kTile][kPitch]: its output gradients
  float* k_n = dout_n + Shape::kRowFloats;           // [kTile][kPitch]: the key tile
  float* v_n = k_n + Shape::kRowFloats;              // [kTile][kPitch]: its values
  float* dz_t = v_n + Shape::kRowFloats;             // [kTile][kScorePitch]: score gradients, key-major
  float* key_kept = dz_t + Shape::kScoreFloats;      // [kTile]
  float* stash = key_kept + kTile;                   // [kWarps][32]: warp_histogram_add's exchange
  double* time_hist = reinterpret_cast<double*>(stash + kWarps * 32);  // [kWarps][time_columns]

  const int num_tiles = (in.seq + kTile - 1) / kTile;
  const BlockTile bt = block_tile(in, num_tiles, true);
  const RelativeBias bias = relative_bias(in, bt.b);
  const int q0 = bt.tile * kTile, q_rows = min(kTile, in.seq - q0);
  const int64_t stride = 4 * in.width();
  const int tx = thread_column(), m0 = thread_first_row<Shape>(), warp = threadIdx.x / 32;
  const bool warp_has_rows = warp_first_row<Shape>() < q_rows;
  double* partial = bias_partial + blockIdx.x * static_cast<int64_t>(in.seq + time_columns);
  for (int c = threadIdx.x; c < in.seq; c += kThreads) partial[c] = 0.0;
  for (int c = threadIdx.x; c < kWarps * time_columns; c += kThreads) time_hist[c] = 0.0;
  const float* dout_tile = dout + (bt.b * in.seq + q0) * in.width() + static_cast<int64_t>(bt.h) * in.head_dim;
  load_rows<Shape>(q_n, in.uvqk_row(bt.b, bt.h, kQ, q0), stride, q_rows, nullptr, in.head_dim, nullptr);
  load_rows<Shape>(dout_n, dout_tile, in.width(), q_rows, nullptr, in.head_dim, nullptr);

  float acc[R][Shape::kDimCols] = {};
  for (int kt = 0; kt <= bt.tile; ++kt) {
    const int k0 = kt * kTile, k_rows = min(kTile, in.seq - k0);
    const float* valid_tile = in.valid + bt.b * in.seq + k0;
    __syncthreads();  // the previous key tile and score gradients are no longer read
    load_rows<Shape>(k_n, in.uvqk_row(bt.b, bt.h, kK, k0), stride, k_rows, valid_tile, in.head_dim, key_kept);
    load_rows<Shape>(v_n, in.uvqk_row(bt.b, bt.h, kV, k0), stride, k_rows, valid_tile, in.head_dim, nullptr);
    if (!tile_has_valid_key(valid_tile, k_rows)) continue;  // block-uniform, and a barrier

    // Warps without rows store zeros: the diagonal walks below read every row of dz_t.
    float s[R][C] = {}, dz[R][C] = {};  // dz holds dw = dout . v until its pair is done
    if (warp_has_rows) {
      accumulate_row_dots_upto<Shape>(s, q_n + m0 * Shape::kPitch, k_n + tx * Shape::kPitch, dot_length(in), k_rows);
      accumulate_row_dots_upto<Shape>(dz, dout_n + m0 * Shape::kPitch, v_n + tx * Shape::kPitch, dot_length(in),
                                      k_rows);
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int e = 0; e < C; ++e) {
          const int i = q0 + m0 + r, jl = tx + kSide * e, j = k0 + jl;
          int bucket = -1;  // no histogram entry for a masked pair
          float grad = 0.0f;
          if (pair_visible(in, i, j, key_kept[jl]))
            grad = pair_grad(bias.score(i, j, s[r][e], bucket), dz[r][e], in.inv_seq).dz;
          dz[r][e] = grad;
          if (time_columns > 0) warp_histogram_add(time_hist + warp * time_columns, stash + warp * 32, bucket, grad);
        }
    }
#pragma unroll
    for (int e = 0; e < C; ++e) store_score_column<Shape>(dz_t + (tx + kSide * e) * Shape::kScorePitch + m0, dz, e);
    if (warp_has_rows) {
      __syncwarp();  // a warp reads back only the dz rows its own lanes wrote
      accumulate_weighted_rows<Shape>(acc, dz_t + m0, k_n, k_rows);
    }
    __syncthreads();  // dz_t is complete for the diagonal walks
    add_diagonal_sums<Shape>(dz_t, partial, q0, k0, in.seq);
  }

  __syncthreads();  // the warp histograms are complete
  for (int c = threadIdx.x; c < time_columns; c += kThreads) {
    double total = 0.0;
    for (int w = 0; w < kWarps; ++w) total += time_hist[w * time_columns + c];
    partial[in.seq + c] = total;
  }
  float* du = duvqk + bt.b * in.seq * 4 * in.width() + static_cast<int64_t>(bt.h) * in.head_dim;
  write_rows<Shape>(du + kQ * in.width(), 4 * in.width(), acc, q0, in.seq, in.head_dim);
  const float zeros[R][Shape::kDimCols] = {};  // u is used outside this op: no gradient from here
  write_rows<Shape>(du + kU * in.width(), 4 * in.width(), zeros, q0, in.seq, in.head_dim);
}

// ---- backward, key-major sweep: dk, dv --------------------------------------------------------

template <class Shape>
size_t backward_key_shared_bytes() {
  return (4 * Shape::kRowFloats + 2 * Shape::kScoreFloats + Shape::kTile) * sizeof(float);
}

// One block per (b, h, key tile): dv_j = sum over query tiles qt >= tile of W(qt, j)^T dOut(qt) and
// dk_j = sum of dZ(qt, j)^T Q(qt), the scores transposed (keys are the rows here).
template <class Shape>
__global__ void __launch_bounds__(kThreads, Shape::kMinBlocksPerSm)
    backward_key_kernel(HstuInputs in, const float* dout, float* duvqk) {
  constexpr int kTile = Shape::kTile, R = Shape::kRows, C = Shape::kCols;
  extern __shared__ float4 shared_f4[];
  float* k_n = reinterpret_cast<float*>(shared_f4);  // [kTile][kPitch]: the key tile
  float* v_n = k_n + Shape::kRowFloats;              // [kTile][kPitch]: its values
  float* q_n = v_n + Shape::kRowFloats;              // [kTile][kPitch]: the query tile
  float* dout_n = q_n + Shape::kRowFloats;           // [kTile][kPitch]: its output gradients
  float* w_s = dout_n + Shape::kRowFloats;           // [kTile][kScorePitch]: weights, query-major
  float* dz_s = w_s + Shape::kScoreFloats;           // [kTile][kScorePitch]: score gradients, query-major
  float* key_kept = dz_s + Shape::kScoreFloats;      // [kTile]

  const int num_tiles = (in.seq + kTile - 1) / kTile;
  const BlockTile bt = block_tile(in, num_tiles, false);
  const RelativeBias bias = relative_bias(in, bt.b);
  const int k0 = bt.tile * kTile, k_rows = min(kTile, in.seq - k0);
  const int64_t stride = 4 * in.width();
  const int tx = thread_column(), m0 = thread_first_row<Shape>();
  const bool warp_has_rows = warp_first_row<Shape>() < k_rows;
  const float* valid_tile = in.valid + bt.b * in.seq + k0;
  load_rows<Shape>(k_n, in.uvqk_row(bt.b, bt.h, kK, k0), stride, k_rows, valid_tile, in.head_dim, key_kept);
  load_rows<Shape>(v_n, in.uvqk_row(bt.b, bt.h, kV, k0), stride, k_rows, valid_tile, in.head_dim, nullptr);
  const bool any_key = tile_has_valid_key(valid_tile, k_rows);  // else dk = dv = 0

  float acc_dk[R][Shape::kDimCols] = {}, acc_dv[R][Shape::kDimCols] = {};
  for (int qt = bt.tile; any_key && qt < num_tiles; ++qt) {
    const int q0 = qt * kTile, q_rows = min(kTile, in.seq - q0);
    const float* dout_tile = dout + (bt.b * in.seq + q0) * in.width() + static_cast<int64_t>(bt.h) * in.head_dim;
    __syncthreads();  // the previous query tile and scores are no longer read
    load_rows<Shape>(q_n, in.uvqk_row(bt.b, bt.h, kQ, q0), stride, q_rows, nullptr, in.head_dim, nullptr);
    load_rows<Shape>(dout_n, dout_tile, in.width(), q_rows, nullptr, in.head_dim, nullptr);
    __syncthreads();
    if (!warp_has_rows) continue;  // warp-uniform: the keys of this warp are all past the end

    float s[R][C] = {}, dw[R][C] = {};
    accumulate_row_dots_upto<Shape>(s, k_n + m0 * Shape::kPitch, q_n + tx * Shape::kPitch, dot_length(in), q_rows);
    accumulate_row_dots_upto<Shape>(dw, v_n + m0 * Shape::kPitch, dout_n + tx * Shape::kPitch, dot_length(in), q_rows);
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int e = 0; e < C; ++e) {
        const int jl = m0 + r, i = q0 + tx + kSide * e, j = k0 + jl;
        PairGrad g{0.0f, 0.0f};
        if (pair_visible(in, i, j, key_kept[jl])) {
          int bucket;
          g = pair_grad(bias.score(i, j, s[r][e], bucket), dw[r][e], in.inv_seq);
        }
        s[r][e] = g.w;
        dw[r][e] = g.dz;
      }
#pragma unroll
    for (int e = 0; e < C; ++e) {
      const int il = tx + kSide * e;
      store_score_column<Shape>(w_s + il * Shape::kScorePitch + m0, s, e);
      store_score_column<Shape>(dz_s + il * Shape::kScorePitch + m0, dw, e);
    }
    __syncwarp();  // a warp reads back only the key rows its own lanes wrote
    accumulate_weighted_rows<Shape>(acc_dv, w_s + m0, dout_n, q_rows);
    accumulate_weighted_rows<Shape>(acc_dk, dz_s + m0, q_n, q_rows);
  }
  float* dk = duvqk + bt.b * in.seq * 4 * in.width() + static_cast<int64_t>(bt.h) * in.head_dim;
  write_rows<Shape>(dk + kV * in.width(), 4 * in.width(), acc_dv, k0, in.seq, in.head_dim);
  write_rows<Shape>(dk + kK * in.width(), 4 * in.width(), acc_dk, k0, in.seq, in.head_dim);
}

// ---- bias gradients ---------------------------------------------------------------------------

constexpr int kReduceColumns = 32, kReduceLanes = 32;

// Output column c: dpos_bias[c] for c < 2T-1 (offsets j - i > 0 are masked: 0), then dtime_bias.
// Each is the sum of its partial column over the query blocks, in block order: lane l sums the
// blocks l, l + 32, .., then lane 0 adds the 32 lane sums in lane order.
__global__ void __launch_bounds__(kReduceColumns* kReduceLanes)
    bias_grad_reduce_kernel(const double* partial, int64_t blocks, int seq, int time_columns, float* dpos_bias,
                            float* dtime_bias) {
  __shared__ double lane_sums[kReduceLanes][kReduceColumns + 1];
  const int cx = threadIdx.x % kReduceColumns, lane = threadIdx.x / kReduceColumns;
  const int64_t column = static_cast<int64_t>(blockIdx.x) * kReduceColumns + cx;
  const int64_t num_offsets = 2 * static_cast<int64_t>(seq) - 1, width = seq + time_columns;
  int64_t source = -1;  // the partial column, none for the masked offsets
  if (column < seq)
    source = column;
  else if (column >= num_offsets && column < num_offsets + time_columns)
    source = seq + (column - num_offsets);
  double sum = 0.0;
  if (source >= 0) {
    constexpr int kBatch = 8;  // loads in flight per thread; the additions stay in block order
    for (int64_t row = lane; row < blocks; row += kBatch * kReduceLanes) {
      double values[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int64_t r = row + u * kReduceLanes;
        values[u] = r < blocks ? partial[r * width + source] : 0.0;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) sum += values[u];
    }
  }
  lane_sums[lane][cx] = sum;
  __syncthreads();
  if (lane != 0 || column >= num_offsets + time_columns) return;
  double total = 0.0;
  for (int l = 0; l < kReduceLanes; ++l) total += lane_sums[l][cx];
  if (column < num_offsets)
    dpos_bias[column] = static_cast<float>(total);
  else
    dtime_bias[column - num_offsets] = static_cast<float>(total);
}

}  // namespace
}  // namespace hstu

namespace {

using hstu::HstuInputs;
using hstu::kThreads;

// ---- launch helpers ---------------------------------------------------------------------------

// Calls f(TileShape{}) for the smallest head-dim bucket that holds head_dim. Up to 128 the tiles
// are 64 x 64; 256 takes 32 x 32 tiles to stay within shared memory.
template <class F>
void with_tile_shape(const char* op, int64_t head_dim, F&& f) {
  if (head_dim <= 16)
    f(hstu::TileShape<64, 16>{});
  else if (head_dim <= 32)
    f(hstu::TileShape<64, 32>{});
  else if (head_dim <= 64)
    f(hstu::TileShape<64, 64>{});
  else if (head_dim <= 128)
    f(hstu::TileShape<64, 128>{});
  else if (head_dim <= 256)
    f(hstu::TileShape<32, 256>{});
  else
    MUONREC_FAIL("{}: head dim {} is above the largest supported (256)", op, head_dim);
}

HstuInputs make_inputs(const char* op, const float* uvqk, const float* valid, const float* pos_bias,
                       const float* time_bias, const int32_t* time_buckets, int64_t batch, int64_t seq, int64_t heads,
                       int64_t head_dim, int tile) {
  // Positions and offsets are ints in the kernels (j - i + T - 1 < 2T), and blocks one grid row.
  MUONREC_CHECK(seq < (int64_t{1} << 30) && heads * head_dim < (int64_t{1} << 28), "{}: seq={} width={} too large", op,
                seq, heads * head_dim);
  const int64_t blocks = (seq + tile - 1) / tile * batch * heads;
  MUONREC_CHECK(blocks <= INT32_MAX, "{}: {} tiles exceed one launch's grid", op, blocks);
  return HstuInputs{uvqk,
                    valid,
                    pos_bias,
                    time_bias,
                    time_buckets,
                    batch * heads,
                    static_cast<int>(seq),
                    static_cast<int>(heads),
                    static_cast<int>(head_dim),
                    1.0f / static_cast<float>(seq)};  // the reference's rounding
}

unsigned grid_of(const HstuInputs& in, int tile) {
  return static_cast<unsigned>((in.seq + tile - 1) / tile * in.batch_heads);
}

// Opts the kernel in to `bytes` of dynamic shared memory (above the default 48 KiB). The tiles grow
// with the head dim, the backward's histograms with the number of time buckets.
template <class Kernel>
void reserve_shared(const char* op, Kernel kernel, size_t bytes, int64_t head_dim, int64_t time_columns) {
  int device = 0, limit = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  MUONREC_CHECK(bytes <= static_cast<size_t>(limit),
                "{}: head dim {} with {} time buckets needs {} bytes of shared memory per block (at most {})", op,
                head_dim, time_columns, bytes, limit);
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
}

}  // namespace

void hstu_attention_forward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                            const int32_t* time_buckets, float* out, int64_t batch, int64_t seq, int64_t heads,
                            int64_t head_dim, cudaStream_t stream) {
  NVTX_RANGE("hstu_attention_forward");
  const char* op = "hstu_attention_forward";
  if (batch * heads * seq <= 0 || head_dim <= 0) return;
  with_tile_shape(op, head_dim, [&](auto shape) {
    using Shape = decltype(shape);
    const HstuInputs in =
        make_inputs(op, uvqk, valid, pos_bias, time_bias, time_buckets, batch, seq, heads, head_dim, Shape::kTile);
    const size_t shared_bytes = hstu::forward_shared_bytes<Shape>();
    reserve_shared(op, hstu::forward_kernel<Shape>, shared_bytes, head_dim, 0);
    hstu::forward_kernel<Shape><<<grid_of(in, Shape::kTile), kThreads, shared_bytes, stream>>>(in, out);
    CUDA_LAUNCH_CHECK();
  });
}

void hstu_attention_backward(const float* uvqk, const float* valid, const float* pos_bias, const float* time_bias,
                             const int32_t* time_buckets, const float* dout, float* duvqk, float* dpos_bias,
                             float* dtime_bias, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim,
                             int64_t num_time_buckets, cudaStream_t stream) {
  NVTX_RANGE("hstu_attention_backward");
  const char* op = "hstu_attention_backward";
  const int64_t num_offsets = 2 * seq - 1;
  const int64_t time_columns = dtime_bias ? num_time_buckets : 0;
  if (batch * heads * seq <= 0 || head_dim <= 0) {
    // No (b, h, i, j) term, or all of them zero (empty heads): the bias gradients are still written.
    if (num_offsets > 0) CUDA_CHECK(cudaMemsetAsync(dpos_bias, 0, num_offsets * sizeof(float), stream));
    if (time_columns > 0) CUDA_CHECK(cudaMemsetAsync(dtime_bias, 0, time_columns * sizeof(float), stream));
    return;
  }
  with_tile_shape(op, head_dim, [&](auto shape) {
    using Shape = decltype(shape);
    const HstuInputs in =
        make_inputs(op, uvqk, valid, pos_bias, time_bias, time_buckets, batch, seq, heads, head_dim, Shape::kTile);
    const size_t query_bytes = hstu::backward_query_shared_bytes<Shape>(time_columns);
    const size_t key_bytes = hstu::backward_key_shared_bytes<Shape>();
    reserve_shared(op, hstu::backward_query_kernel<Shape>, query_bytes, head_dim, time_columns);
    reserve_shared(op, hstu::backward_key_kernel<Shape>, key_bytes, head_dim, 0);
    const unsigned grid = grid_of(in, Shape::kTile);
    double* partial = nullptr;  // [query blocks][T + time_columns]: O(blocks * (T + buckets)), no T x T
    CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&partial),
                               static_cast<size_t>(grid) * (seq + time_columns) * sizeof(double), stream));

    hstu::backward_query_kernel<Shape>
        <<<grid, kThreads, query_bytes, stream>>>(in, dout, duvqk, partial, static_cast<int>(time_columns));
    CUDA_LAUNCH_CHECK();
    hstu::backward_key_kernel<Shape><<<grid, kThreads, key_bytes, stream>>>(in, dout, duvqk);
    CUDA_LAUNCH_CHECK();
    const unsigned reduce_grid = ceil_div(static_cast<size_t>(num_offsets + time_columns), hstu::kReduceColumns);
    hstu::bias_grad_reduce_kernel<<<reduce_grid, hstu::kReduceColumns * hstu::kReduceLanes, 0, stream>>>(
        partial, grid, static_cast<int>(seq), static_cast<int>(time_columns), dpos_bias, dtime_bias);
    CUDA_LAUNCH_CHECK();
    CUDA_CHECK(cudaFreeAsync(partial, stream));
  });
}

namespace {

__global__ void hstu_time_buckets_kernel(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= batch * seq * seq) return;
  const int64_t b = e / (seq * seq), i = e / seq % seq, j = e % seq;
  buckets[e] = kernels::hstu_time_bucket_at(timestamps + b * seq, seq, i, j);
}

}  // namespace

void hstu_time_buckets(const int64_t* timestamps, int32_t* buckets, int64_t batch, int64_t seq, cudaStream_t stream) {
  NVTX_RANGE("hstu_time_buckets");
  const int64_t n = batch * seq * seq;
  if (n == 0) return;
  constexpr unsigned kBucketBlock = 256;
  hstu_time_buckets_kernel<<<ceil_div(n, kBucketBlock), kBucketBlock, 0, stream>>>(timestamps, buckets, batch, seq);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda
