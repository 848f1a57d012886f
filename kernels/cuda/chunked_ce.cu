// Each call walks 2-D tiles (a block of rows x a chunk of items). A cuBLAS product writes a tile's
// logits; the forward folds the tile into per-row log-sum-exp state, the backward turns it into the
// logits' gradient in place and applies it to both factors with two more products. Everything is
// queued on the stream: no host synchronisation.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "muonrec/engine/allocator.h"
#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/precision.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/kernels/cuda/chunked_ce.h"
#include "muonrec/kernels/cuda/matmul.h"

namespace muonrec::kernels::cuda {
namespace {

// A tile of 8 Mi logits (16 MB in bf16, 32 MB in fp32) is sized to stay resident in the H100's
// 50 MB L2 from the product that writes it to the kernel and the products that read it back, so
// the rows x classes logits need not travel through HBM. Larger tiles would spill; smaller ones
// need more launches (four per tile in the backward) for the same work.
constexpr int64_t kTileElements = int64_t{8} << 20;
// Tile rows and the rows of the bf16 copies are padded to a multiple of 8 elements: every row then
// starts 16-byte aligned, for the kernels' vector loads and the tensor cores' operand loads.
constexpr int64_t kRowAlign = 8;
// Rows per tile are rounded up to whole 16-row MMA tiles.
constexpr int64_t kRowBlockAlign = 16;
constexpr unsigned kRowThreads = 128;  // one block per tile row
constexpr unsigned kFinishThreads = 1024;
constexpr unsigned kCastThreads = 256;
constexpr unsigned kMaxCastBlocks = 4096;

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

int64_t round_up(int64_t n, int64_t multiple) { return (n + multiple - 1) / multiple * multiple; }

// ---- 16-byte vectors of tile elements, converted to and from fp32 in registers ----

template <typename T>
constexpr int kVec = 16 / static_cast<int>(sizeof(T));

__device__ __forceinline__ void load_vec(const float* p, float (&v)[4]) {
  const float4 x = *reinterpret_cast<const float4*>(p);
  v[0] = x.x;
  v[1] = x.y;
  v[2] = x.z;
  v[3] = x.w;
}

__device__ __forceinline__ void load_vec(const __nv_bfloat16* p, float (&v)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const auto* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

__device__ __forceinline__ void store_vec(float* p, const float (&v)[4]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}

__device__ __forceinline__ void store_vec(__nv_bfloat16* p, const float (&v)[8]) {
  uint4 raw;
  auto* pairs = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) pairs[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = raw;
}

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// ---- online log-sum-exp ----

// Sum of 2^(y - max) over the values y = logit * log2(e) seen so far: base 2 because exp2f is the
// hardware's own exponential. The empty state is (-inf, 0).
struct Log2SumExp {
  float max;
  float sum;
};

__device__ __forceinline__ Log2SumExp merge(Log2SumExp a, Log2SumExp b) {
  const float max = fmaxf(a.max, b.max);
  if (max == -INFINITY) return {max, 0.0f};  // both empty: -inf - -inf would be NaN
  return {max, a.sum * exp2f(a.max - max) + b.sum * exp2f(b.max - max)};
}

// The merge of every thread's state, in thread 0 (blockDim.x == kRowThreads). Fixed shuffle and
// fold order: the result is reproducible bit for bit.
__device__ Log2SumExp block_merge(Log2SumExp state) {
  __shared__ Log2SumExp warp_states[kRowThreads / 32];
  for (int offset = 16; offset > 0; offset >>= 1) {
    const Log2SumExp other{__shfl_xor_sync(0xffffffffu, state.max, offset),
                           __shfl_xor_sync(0xffffffffu, state.sum, offset)};
    state = merge(state, other);
  }
  if (threadIdx.x % 32 == 0) warp_states[threadIdx.x / 32] = state;
  __syncthreads();
  if (threadIdx.x == 0)
    for (unsigned w = 1; w < kRowThreads / 32; ++w) state = merge(state, warp_states[w]);
  return state;
}

// ---- kernels ----

// out[r, c] = bf16(x[r, c]) for c < cols, and 0 in the padding columns up to ld (the padding then
// adds nothing to the logits product, whose depth is ld). One warp per row: no index division.
__global__ void to_bf16_padded_kernel(const float* x, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* out) {
  const int64_t warps_per_block = blockDim.x / 32, warps = gridDim.x * warps_per_block;
  for (int64_t r = blockIdx.x * warps_per_block + threadIdx.x / 32; r < rows; r += warps)
    for (int64_t c = threadIdx.x % 32; c < ld; c += 32)
      out[r * ld + c] = __float2bfloat16_rn(c < cols ? x[r * cols + c] : 0.0f);
}

// Folds row blockIdx.x of a logits tile (classes chunk_begin .. chunk_begin + width, row stride ld)
// into the row's running state and records the target's logit when it falls in this chunk. The
// first chunk starts the state, so nothing needs initialising. Ignored rows are skipped (uniformly
// for the whole block, before any barrier).
template <typename T>
__global__ void fold_tile_kernel(const T* tile, int64_t ld, int64_t width, const int64_t* targets, int64_t chunk_begin,
                                 bool first_chunk, Log2SumExp* row_state, float* target_logit) {
  constexpr int kWidth = kVec<T>;
  const int64_t r = blockIdx.x;
  if (targets[r] < 0) return;
  const T* z = tile + r * ld;
  Log2SumExp state{-INFINITY, 0.0f};
  // Vectors start below width and ld is a multiple of the vector width: loads stay in the row.
  for (int64_t c = threadIdx.x * kWidth; c < width; c += kRowThreads * kWidth) {
    const int64_t valid = width - c;  // logits in this vector: the padding past width holds none
    float y[kWidth];
    load_vec(z + c, y);
    float vec_max = -INFINITY;
#pragma unroll
    for (int i = 0; i < kWidth; ++i) {
      y[i] = i < valid ? y[i] * kLog2e : -INFINITY;
      vec_max = fmaxf(vec_max, y[i]);
    }
    // vec_max is finite (column c is a logit), so exp2f(-inf - max) = 0 starts an empty state.
    const float max = fmaxf(state.max, vec_max);
    float sum = state.sum * exp2f(state.max - max);
#pragma unroll
    for (int i = 0; i < kWidth; ++i) sum += exp2f(y[i] - max);
    state = {max, sum};
  }
  state = block_merge(state);
  if (threadIdx.x != 0) return;
  const int64_t t = targets[r] - chunk_begin;
  const bool target_here = t >= 0 && t < width;
  if (first_chunk) {
    row_state[r] = state;
    target_logit[r] = target_here ? to_f32(z[t]) : 0.0f;
  } else {
    row_state[r] = merge(row_state[r], state);
    if (target_here) target_logit[r] = to_f32(z[t]);
  }
}

// One block, fixed-order reduction: the loss is reproducible bit for bit.
__global__ void finish_kernel(const Log2SumExp* row_state, const float* target_logit, const int64_t* targets,
                              int64_t rows, float* logsumexp, float* loss, float* valid_count) {
  __shared__ float shared[kFinishThreads / 32];
  float total = 0.0f, counted = 0.0f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    if (targets[r] < 0) {
      logsumexp[r] = 0.0f;
      continue;
    }
    const Log2SumExp state = row_state[r];
    const float lse = (state.max + log2f(state.sum)) * kLn2;
    logsumexp[r] = lse;
    total += lse - target_logit[r];
    counted += 1.0f;
  }
  total = block_reduce(total, SumOp{}, shared);
  counted = block_reduce(counted, SumOp{}, shared);
  if (threadIdx.x == 0) {
    valid_count[0] = counted;
    loss[0] = counted > 0.0f ? total / counted : 0.0f;
  }
}

// Turns row blockIdx.x of a logits tile into d(loss)/d(logits) in place:
// (softmax - onehot) * dloss / valid_count, and 0 on ignored rows and in the padding past width.
template <typename T>
__global__ void gradient_tile_kernel(T* tile, int64_t ld, int64_t width, const int64_t* targets, int64_t chunk_begin,
                                     const float* logsumexp, const float* valid_count, const float* dloss) {
  constexpr int kWidth = kVec<T>;
  const int64_t r = blockIdx.x;
  T* z = tile + r * ld;
  const bool ignored = targets[r] < 0;
  const int64_t t = targets[r] - chunk_begin;
  const float factor = valid_count[0] > 0.0f ? dloss[0] / valid_count[0] : 0.0f;
  const float lse_log2 = logsumexp[r] * kLog2e;
  for (int64_t c = threadIdx.x * kWidth; c < width; c += kRowThreads * kWidth) {
    const int64_t valid = width - c, target = t - c;  // both relative to this vector
    float g[kWidth];
    if (ignored) {
#pragma unroll
      for (int i = 0; i < kWidth; ++i) g[i] = 0.0f;
    } else {
      load_vec(z + c, g);
#pragma unroll
      for (int i = 0; i < kWidth; ++i) {
        const float p = exp2f(fmaf(g[i], kLog2e, -lse_log2));
        g[i] = i < valid ? (p - (i == target ? 1.0f : 0.0f)) * factor : 0.0f;
      }
    }
    store_vec(z + c, g);
  }
}

// ---- launch helpers ----

void to_bf16_padded(const float* x, int64_t rows, int64_t cols, int64_t ld, __nv_bfloat16* out, cudaStream_t stream) {
  NVTX_RANGE("ce_to_bf16_padded");
  if (rows == 0) return;
  const unsigned blocks = std::min(ceil_div(static_cast<size_t>(rows), kCastThreads / 32), kMaxCastBlocks);
  to_bf16_padded_kernel<<<blocks, kCastThreads, 0, stream>>>(x, rows, cols, ld, out);
  CUDA_LAUNCH_CHECK();
}

// How a call is cut into tiles.
struct TilePlan {
  int64_t width;       // items per tile (the last chunk may be narrower)
  int64_t ld;          // tile row stride: width padded to kRowAlign
  int64_t block_rows;  // rows per tile (the last row block may be shorter)
};

TilePlan plan_tiles(int64_t rows, int64_t classes, int64_t chunk) {
  const int64_t width = std::min(chunk, classes);
  const int64_t ld = round_up(width, kRowAlign);
  // As many rows as the tile budget holds, spread evenly over the row blocks (a last block of a few
  // rows would cost as many launches as a full one).
  const int64_t max_rows = std::max<int64_t>(1, kTileElements / ld);
  const int64_t blocks = std::max<int64_t>(1, (rows + max_rows - 1) / max_rows);
  return {width, ld, std::min(rows, round_up((rows + blocks - 1) / blocks, kRowBlockAlign))};
}

// The two factors as the products read them: the fp32 originals, or under BF16 precision bf16
// copies made once per call (each value rounded once for all the products that read it), with rows
// padded to kRowAlign.
class Factors {
 public:
  Factors(const float* h, const float* weight, int64_t rows, int64_t classes, int64_t dim, bool bf16,
          cudaStream_t stream)
      : type_(bf16 ? GemmType::BF16 : GemmType::F32), ld_(bf16 ? round_up(dim, kRowAlign) : dim), h_(h),
        weight_(weight) {
    if (!bf16) return;
    copies_ = std::make_unique<Storage>((rows + classes) * ld_ * sizeof(__nv_bfloat16), Device::CUDA);
    auto* h16 = static_cast<__nv_bfloat16*>(copies_->data());
    auto* weight16 = h16 + rows * ld_;
    to_bf16_padded(h, rows, dim, ld_, h16, stream);
    to_bf16_padded(weight, classes, dim, ld_, weight16, stream);
    h_ = h16;
    weight_ = weight16;
  }

  GemmType type() const { return type_; }
  size_t element_bytes() const { return type_ == GemmType::BF16 ? sizeof(__nv_bfloat16) : sizeof(float); }
  // The depth of the logits product: padding columns are zeros in both copies and add nothing.
  int64_t depth() const { return ld_; }
  GemmInput h_rows(int64_t first) const { return {row(h_, first), type_, ld_}; }
  GemmInput weight_rows(int64_t first) const { return {row(weight_, first), type_, ld_}; }

 private:
  const void* row(const void* base, int64_t index) const {
    return static_cast<const char*>(base) + index * ld_ * static_cast<int64_t>(element_bytes());
  }

  GemmType type_;
  int64_t ld_;
  const void* h_;
  const void* weight_;
  std::unique_ptr<Storage> copies_;
};

// tile[0:count, 0:width] = scale * h[first : first+count] @ weight[begin : begin+width]^T, in the
// factors' element type (fp32 accumulation either way).
void tile_logits(const Factors& factors, float scale, int64_t first, int64_t count, int64_t begin, int64_t width,
                 const TilePlan& plan, void* tile, cudaStream_t stream) {
  gemm_ex(false, true, count, width, factors.depth(), scale, factors.h_rows(first), factors.weight_rows(begin), 0.0f,
          {tile, factors.type(), plan.ld}, stream);
}

template <typename T>
void fold_tile(const void* tile, const TilePlan& plan, int64_t count, int64_t width, const int64_t* targets,
               int64_t begin, Log2SumExp* row_state, float* target_logit, cudaStream_t stream) {
  NVTX_RANGE("ce_fold_tile");
  fold_tile_kernel<T><<<static_cast<unsigned>(count), kRowThreads, 0, stream>>>(
      static_cast<const T*>(tile), plan.ld, width, targets, begin, begin == 0, row_state, target_logit);
  CUDA_LAUNCH_CHECK();
}

template <typename T>
void gradient_tile(void* tile, const TilePlan& plan, int64_t count, int64_t width, const int64_t* targets,
                   int64_t begin, const float* logsumexp, const float* valid_count, const float* dloss,
                   cudaStream_t stream) {
  NVTX_RANGE("ce_gradient_tile");
  gradient_tile_kernel<T><<<static_cast<unsigned>(count), kRowThreads, 0, stream>>>(
      static_cast<T*>(tile), plan.ld, width, targets, begin, logsumexp, valid_count, dloss);
  CUDA_LAUNCH_CHECK();
}

}  // namespace

void linear_ce_forward(const float* h, const float* weight, const int64_t* targets, int64_t rows, int64_t dim,
                       int64_t classes, float scale, int64_t chunk, float* logsumexp, float* loss, float* valid_count,
                       cudaStream_t stream) {
  NVTX_RANGE("linear_ce_forward");
  const bool bf16 = matmul_precision() == MatmulPrecision::BF16;
  const TilePlan plan = plan_tiles(rows, classes, chunk);
  const Factors factors(h, weight, rows, classes, dim, bf16, stream);
  Storage tile(plan.block_rows * plan.ld * factors.element_bytes(), Device::CUDA);
  Storage state(rows * (sizeof(Log2SumExp) + sizeof(float)), Device::CUDA);
  auto* row_state = static_cast<Log2SumExp*>(state.data());
  auto* target_logit = reinterpret_cast<float*>(row_state + rows);
  for (int64_t begin = 0; begin < classes; begin += plan.width) {
    const int64_t width = std::min(plan.width, classes - begin);
    for (int64_t first = 0; first < rows; first += plan.block_rows) {
      const int64_t count = std::min(plan.block_rows, rows - first);
      tile_logits(factors, scale, first, count, begin, width, plan, tile.data(), stream);
      (bf16 ? fold_tile<__nv_bfloat16> : fold_tile<float>)(tile.data(), plan, count, width, targets + first, begin,
                                                           row_state + first, target_logit + first, stream);
    }
  }
  finish_kernel<<<1, kFinishThreads, 0, stream>>>(row_state, target_logit, targets, rows, logsumexp, loss,
                                                  valid_count);
  CUDA_LAUNCH_CHECK();
}

void linear_ce_backward(const float* h, const float* weight, const int64_t* targets, const float* logsumexp,
                        const float* valid_count, const float* dloss, int64_t rows, int64_t dim, int64_t classes,
                        float scale, int64_t chunk, float* dh, float* dweight, cudaStream_t stream) {
  NVTX_RANGE("linear_ce_backward");
  if (rows == 0) {  // no row block will write dweight
    CUDA_CHECK(cudaMemsetAsync(dweight, 0, classes * dim * sizeof(float), stream));
    return;
  }
  const bool bf16 = matmul_precision() == MatmulPrecision::BF16;
  const TilePlan plan = plan_tiles(rows, classes, chunk);
  const Factors factors(h, weight, rows, classes, dim, bf16, stream);
  Storage tile(plan.block_rows * plan.ld * factors.element_bytes(), Device::CUDA);
  const GemmInput gradient{tile.data(), factors.type(), plan.ld};
  // Chunks outermost: the chunk's weight rows and dweight rows stay in L2 across the row blocks,
  // and dh (rows x dim, smaller than classes x dim in practice) is what travels once per chunk.
  for (int64_t begin = 0; begin < classes; begin += plan.width) {
    const int64_t width = std::min(plan.width, classes - begin);
    for (int64_t first = 0; first < rows; first += plan.block_rows) {
      const int64_t count = std::min(plan.block_rows, rows - first);
      tile_logits(factors, scale, first, count, begin, width, plan, tile.data(), stream);
      (bf16 ? gradient_tile<__nv_bfloat16> : gradient_tile<float>)(tile.data(), plan, count, width, targets + first,
                                                                   begin, logsumexp + first, valid_count, dloss,
                                                                   stream);
      // dh[block] += scale * G @ weight[chunk]; dweight[chunk] += scale * G^T @ h[block]. The first
      // chunk (and the first row block) overwrites instead, so neither output needs zeroing first.
      gemm_ex(false, false, count, dim, width, scale, gradient, factors.weight_rows(begin), begin == 0 ? 0.0f : 1.0f,
              {dh + first * dim, GemmType::F32, dim}, stream);
      gemm_ex(true, false, width, dim, count, scale, gradient, factors.h_rows(first), first == 0 ? 0.0f : 1.0f,
              {dweight + begin * dim, GemmType::F32, dim}, stream);
    }
  }
}

}  // namespace muonrec::kernels::cuda
