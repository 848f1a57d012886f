#include <cuda_bf16.h>
#include <mma.h>

#include <type_traits>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/block_reduce.cuh"
#include "muonrec/kernels/cuda/muon.h"
#include "muonrec/kernels/cuda/vector_io.cuh"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 256;
// One block reduces the whole tensor in a fixed order: the norm is bitwise reproducible.
constexpr unsigned kReduceBlock = 1024;

__global__ void muon_momentum_kernel(const float* grad, float* buf, float* update, int64_t n, float momentum,
                                     bool nesterov) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  float b = buf[i] + (1.0f - momentum) * (grad[i] - buf[i]);
  buf[i] = b;
  update[i] = nesterov ? b - (b - grad[i]) * (1.0f - momentum) : b;
}

__global__ void sum_squares_kernel(const float* x, float* out, int64_t n) {
  __shared__ double shared[kReduceBlock / 32];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += static_cast<double>(x[i]) * x[i];
  const double total = block_reduce(acc, SumOp{}, shared);
  if (threadIdx.x == 0) out[0] = static_cast<float>(total);
}

__global__ void scale_by_inverse_norm_kernel(float* x, const float* sum_sq, float norm_factor, float eps,
                                             bool bf16_norm, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  float norm = sqrtf(sum_sq[0]);
  if (bf16_norm) norm = round_bf16(norm);
  x[i] *= 1.0f / fmaxf(norm * norm_factor, eps);
}

__global__ void round_to_bf16_kernel(float* x, int64_t n) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  x[i] = round_bf16(x[i]);
}

__global__ void decay_and_add_kernel(float* param, const float* update, int64_t n, float decay, float alpha) {
  int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  param[i] = param[i] * decay + alpha * update[i];
}

}  // namespace

void muon_momentum(const float* grad, float* buf, float* update, int64_t n, float momentum, bool nesterov,
                   cudaStream_t stream) {
  NVTX_RANGE("muon_momentum");
  if (n == 0) return;
  muon_momentum_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(grad, buf, update, n, momentum, nesterov);
  CUDA_LAUNCH_CHECK();
}

void sum_squares(const float* x, float* out, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("sum_squares");
  sum_squares_kernel<<<1, kReduceBlock, 0, stream>>>(x, out, n);
  CUDA_LAUNCH_CHECK();
}

void scale_by_inverse_norm(float* x, const float* sum_sq, float norm_factor, float eps, bool bf16_norm, int64_t n,
                           cudaStream_t stream) {
  NVTX_RANGE("scale_by_inverse_norm");
  if (n == 0) return;
  scale_by_inverse_norm_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(x, sum_sq, norm_factor, eps, bf16_norm, n);
  CUDA_LAUNCH_CHECK();
}

void round_to_bf16(float* x, int64_t n, cudaStream_t stream) {
  NVTX_RANGE("round_to_bf16");
  if (n == 0) return;
  round_to_bf16_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(x, n);
  CUDA_LAUNCH_CHECK();
}

void decay_and_add(float* param, const float* update, int64_t n, float decay, float alpha, cudaStream_t stream) {
  NVTX_RANGE("decay_and_add");
  if (n == 0) return;
  decay_and_add_kernel<<<ceil_div(n, kBlock), kBlock, 0, stream>>>(param, update, n, decay, alpha);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda

// ---- fused small-matrix step ----
namespace muonrec::kernels::cuda {
namespace {

namespace wmma = nvcuda::wmma;
using bf16 = __nv_bfloat16;
using FragA = wmma::fragment<wmma::matrix_a, kMuonTile, kMuonTile, kMuonTile, bf16, wmma::row_major>;
using FragAcc = wmma::fragment<wmma::accumulator, kMuonTile, kMuonTile, kMuonTile, float>;
constexpr int kTileElements = kMuonTile * kMuonTile;

// acc = the 16 x 16 tile of P Q over an inner extent k (a multiple of 16): `p` points at the tile's
// first row of P (row-major, stride ldp); `q` at its first column of Q, which is row-major with
// stride ldq (Layout row_major) or given as the rows of Q^T (Layout col_major, for X X^T).
template <typename Layout>
__device__ __forceinline__ void tile_product(FragAcc& acc, const bf16* p, int ldp, const bf16* q, int ldq, int k) {
  constexpr bool kRowMajor = std::is_same<Layout, wmma::row_major>::value;
  wmma::fill_fragment(acc, 0.0f);
  for (int k0 = 0; k0 < k; k0 += kMuonTile) {
    FragA fp;
    wmma::fragment<wmma::matrix_b, kMuonTile, kMuonTile, kMuonTile, bf16, Layout> fq;
    wmma::load_matrix_sync(fp, p + k0, ldp);
    wmma::load_matrix_sync(fq, kRowMajor ? q + static_cast<int64_t>(k0) * ldq : q + k0, ldq);
    wmma::mma_sync(acc, fp, fq, acc);
  }
}

// The warp's accumulator tile into its fp32 staging tile, where every lane can read any element.
__device__ __forceinline__ void stage_tile(float* stage, const FragAcc& acc) {
  wmma::store_matrix_sync(stage, acc, kMuonTile, wmma::mem_row_major);
  __syncwarp();
}

// A symmetric product S (X X^T, or b A + c A A), tile by tile: only tiles on or above the diagonal
// are computed, and each element is written to both halves by one lane, so S is exactly symmetric
// and half the products are saved. product(acc, ti, tj) computes a tile's matrix product;
// element(i, j, value) turns its entry (i, j) into S[i][j].
template <typename Product, typename Element>
__device__ __forceinline__ void symmetric_tiles(bf16* s, int lds, int tiles, float* stage, Product product,
                                                Element element) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int t = warp; t < tiles * tiles; t += kMuonFusedWarps) {
    const int ti = t / tiles, tj = t % tiles;
    if (tj < ti) continue;
    FragAcc acc;
    product(acc, ti, tj);
    stage_tile(stage, acc);
    for (int e = lane; e < kTileElements; e += 32) {
      const int r = e / kMuonTile, c = e % kMuonTile;
      if (ti == tj && r > c) continue;  // a diagonal tile: its upper half writes both halves
      const int i = ti * kMuonTile + r, j = tj * kMuonTile + c;
      const bf16 v = __float2bfloat16_rn(element(i, j, stage[e]));
      s[i * lds + j] = v;
      s[j * lds + i] = v;
    }
    __syncwarp();  // the lanes are done with the staging tile before the next store
  }
}

// X is [side, length] with row stride ldx: the matrix itself when rows <= cols, its transpose when
// tall (the Gram matrix is then the small one). See MuonFusedLayout for the shared-memory layout.
__global__ void __launch_bounds__(kMuonFusedThreads) muon_fused_small_kernel(const MuonMatrix* matrices,
                                                                             const MuonHyper* hyper_ptr) {
  extern __shared__ __align__(128) unsigned char shared_raw[];
  const MuonMatrix mat = matrices[blockIdx.x];
  const MuonHyper& h = *hyper_ptr;
  const MuonFusedLayout layout(mat.rows, mat.cols);
  const bool tall = mat.rows > mat.cols;
  const int side = layout.side, length = layout.length, ldx = layout.ldx, ldg = layout.ldg;
  const int tiles = layout.side_p / kMuonTile, length_tiles = layout.length_p / kMuonTile;
  bf16* X = reinterpret_cast<bf16*>(shared_raw);
  bf16* A = reinterpret_cast<bf16*>(shared_raw + layout.a_offset());
  bf16* B = reinterpret_cast<bf16*>(shared_raw + layout.b_offset());
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* stage = reinterpret_cast<float*>(shared_raw + layout.stage_offset()) + warp * kTileElements;
  float* reduce = reinterpret_cast<float*>(shared_raw + layout.reduce_offset());
  bf16* scratch = reinterpret_cast<bf16*>(mat.scratch);
  const int n = mat.rows * mat.cols;

  // The padding of X must be zero: it enters every product (and keeps A, B and X' zero there).
  for (int e = threadIdx.x; e < layout.side_p * ldx; e += blockDim.x) X[e] = __float2bfloat16_rn(0.0f);
  __syncthreads();
  // Momentum (torch's lerp forms), the update rounded to bf16 into X, and its squared norm.
  float sum_sq = 0.0f;
  for (int e = threadIdx.x; e < n; e += blockDim.x) {
    const float g = mat.grad[e];
    const float b = mat.momentum_buffer[e] + (1.0f - h.momentum) * (g - mat.momentum_buffer[e]);
    mat.momentum_buffer[e] = b;
    const float u = round_bf16(h.nesterov ? b - (b - g) * (1.0f - h.momentum) : b);
    const int r = e / mat.cols, c = e % mat.cols;
    X[tall ? c * ldx + r : r * ldx + c] = __float2bfloat16_rn(u);
    sum_sq += u * u;
  }
  // torch's norm() of a bf16 tensor is itself bf16. (block_reduce's barriers also publish X.)
  const float norm = round_bf16(sqrtf(block_reduce(sum_sq, SumOp{}, reduce)));
  const float inv = 1.0f / fmaxf(norm * h.norm_factor, h.eps);
  for (int e = threadIdx.x; e < side * length; e += blockDim.x) {
    const int i = e / length, k = e % length;
    X[i * ldx + k] = __float2bfloat16_rn(__bfloat162float(X[i * ldx + k]) * inv);
  }
  __syncthreads();

  for (int step = 0; step < h.ns_steps; ++step) {
    const float a = h.coefficients[step][0], b = h.coefficients[step][1], c = h.coefficients[step][2];
    // A = X X^T
    symmetric_tiles(
        A, ldg, tiles, stage,
        [&](FragAcc& acc, int ti, int tj) {
          tile_product<wmma::col_major>(acc, X + ti * kMuonTile * ldx, ldx, X + tj * kMuonTile * ldx, ldx,
                                        layout.length_p);
        },
        [](int, int, float product) { return product; });
    __syncthreads();
    // B = b A + c A A  (A A is symmetric too)
    symmetric_tiles(
        B, ldg, tiles, stage,
        [&](FragAcc& acc, int ti, int tj) {
          tile_product<wmma::row_major>(acc, A + ti * kMuonTile * ldg, ldg, A + tj * kMuonTile, ldg, layout.side_p);
        },
        [&](int i, int j, float product) { return c * product + b * __bfloat162float(A[i * ldg + j]); });
    __syncthreads();
    // X' = a X + B X, through the global scratch: every tile of X' reads all of X.
    for (int t = warp; t < tiles * length_tiles; t += kMuonFusedWarps) {
      const int ti = t / length_tiles, tk = t % length_tiles;
      FragAcc acc;
      tile_product<wmma::row_major>(acc, B + ti * kMuonTile * ldg, ldg, X + tk * kMuonTile, ldx, layout.side_p);
      stage_tile(stage, acc);
      for (int e = lane; e < kTileElements; e += 32) {
        const int i = ti * kMuonTile + e / kMuonTile, k = tk * kMuonTile + e % kMuonTile;
        if (i < side && k < length)
          scratch[i * length + k] = __float2bfloat16_rn(a * __bfloat162float(X[i * ldx + k]) + stage[e]);
      }
      __syncwarp();
    }
    __syncthreads();
    for (int e = threadIdx.x; e < side * length; e += blockDim.x) X[(e / length) * ldx + e % length] = scratch[e];
    __syncthreads();
  }

  // p = p (1 - lr wd) - adjusted_lr X, X back in the parameter's orientation.
  const float decay = 1.0f - h.lr * h.weight_decay;
  const float adjusted_lr = static_cast<float>(static_cast<double>(h.lr) * mat.lr_scale);
  for (int e = threadIdx.x; e < n; e += blockDim.x) {
    const int r = e / mat.cols, c = e % mat.cols;
    const float x = __bfloat162float(X[tall ? c * ldx + r : r * ldx + c]);
    mat.param[e] = mat.param[e] * decay - adjusted_lr * x;
  }
}

}  // namespace

int64_t muon_fused_max_shared_bytes() {
  static const int64_t bytes = [] {
    int device = 0, optin = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return static_cast<int64_t>(optin);  // the kernel has no static shared memory
  }();
  return bytes;
}

void muon_fused_small(const MuonMatrix* matrices, int32_t count, const MuonHyper* hyper, int64_t shared_bytes,
                      cudaStream_t stream) {
  NVTX_RANGE("muon_fused_small");
  if (count == 0) return;
  MUONREC_CHECK(shared_bytes <= muon_fused_max_shared_bytes(), "muon_fused_small: {} bytes of shared memory needed",
                shared_bytes);
  CUDA_CHECK(cudaFuncSetAttribute(muon_fused_small_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  static_cast<int>(shared_bytes)));
  muon_fused_small_kernel<<<static_cast<unsigned>(count), kMuonFusedThreads, shared_bytes, stream>>>(matrices, hyper);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda
