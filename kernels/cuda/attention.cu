#include "muonrec/kernels/cuda/attention.h"

#include <cmath>
#include <type_traits>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/attention_backward.cuh"
#include "muonrec/kernels/cuda/attention_forward.cuh"

namespace muonrec::kernels::cuda {
namespace {

using namespace attention_tile;

constexpr int64_t kMaxHeadDim = 128;

// Calls f(std::integral_constant<int, bucket>{}) with the smallest head-dim bucket that holds
// head_dim: the kernels size their accumulators (registers) and shared tiles by it.
template <typename F>
void with_head_dim_bucket(int64_t head_dim, F&& f) {
  if (head_dim <= 32) {
    f(std::integral_constant<int, 32>{});
  } else if (head_dim <= 64) {
    f(std::integral_constant<int, 64>{});
  } else {
    f(std::integral_constant<int, 128>{});
  }
}

// Tiles of head dim 64 and 128 need more than the default 48 KiB of shared memory per block (up to
// 167 KiB for the dK/dV pass at 128): opt in once per kernel.
template <auto kKernel>
void allow_shared_memory(size_t bytes) {
  static const bool allowed = [bytes] {
    int device = 0, limit = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    MUONREC_CHECK(bytes <= static_cast<size_t>(limit),
                  "attention: the kernel needs {} bytes of shared memory per block, this GPU allows {}", bytes, limit);
    CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    return true;
  }();
  (void)allowed;
}

// Blocks: x = batch * heads, y = tiles of 64 positions.
dim3 attention_grid(const char* op, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim) {
  MUONREC_CHECK(head_dim <= kMaxHeadDim, "{}: head_dim={} (the CUDA kernels take at most {})", op, head_dim,
                kMaxHeadDim);
  const int64_t tiles = (seq + kTile - 1) / kTile;
  MUONREC_CHECK(batch * heads <= INT32_MAX && tiles <= 65535, "{}: batch*heads = {} and seq = {} exceed one launch's grid",
                op, batch * heads, seq);
  return dim3(static_cast<unsigned>(batch * heads), static_cast<unsigned>(tiles));
}

// 1/sqrt(head_dim) rounded as the reference rounds it.
float softmax_scale(int64_t head_dim) { return 1.0f / std::sqrt(static_cast<float>(head_dim)); }

}  // namespace

void attention_forward(const float* qkv, const float* valid, float* out, float* lse, int64_t batch, int64_t seq,
                       int64_t heads, int64_t head_dim, bool causal, cudaStream_t stream) {
  NVTX_RANGE("attention_forward");
  if (batch * heads * seq <= 0 || head_dim <= 0) return;
  const dim3 grid = attention_grid("attention_forward", batch, seq, heads, head_dim);
  const float scale_log2 = softmax_scale(head_dim) * kLog2e;
  with_head_dim_bucket(head_dim, [&](auto bucket) {
    constexpr int kBucket = decltype(bucket)::value;
    constexpr size_t bytes = forward_shared_bytes<kBucket>();
    allow_shared_memory<attention_forward_kernel<kBucket>>(bytes);
    attention_forward_kernel<kBucket><<<grid, kThreads, bytes, stream>>>(
        qkv, valid, out, lse, static_cast<int>(seq), static_cast<int>(heads), static_cast<int>(head_dim), scale_log2,
        causal);
    CUDA_LAUNCH_CHECK();
  });
}

void attention_backward(const float* qkv, const float* valid, const float* out, const float* lse, const float* dout,
                        float* dqkv, int64_t batch, int64_t seq, int64_t heads, int64_t head_dim, bool causal,
                        cudaStream_t stream) {
  NVTX_RANGE("attention_backward");
  const int64_t rows = batch * heads * seq;
  if (rows <= 0 || head_dim <= 0) return;
  const dim3 grid = attention_grid("attention_backward", batch, seq, heads, head_dim);
  const float scale = softmax_scale(head_dim), scale_log2 = scale * kLog2e;
  // delta_i = dout_i . out_i, [B, H, T]: written by the dQ pass, read by the dK/dV pass.
  float* delta = nullptr;
  CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&delta), static_cast<size_t>(rows) * sizeof(float), stream));
  with_head_dim_bucket(head_dim, [&](auto bucket) {
    constexpr int kBucket = decltype(bucket)::value;
    constexpr size_t dq_bytes = backward_dq_shared_bytes<kBucket>(), dkv_bytes = backward_dkv_shared_bytes<kBucket>();
    allow_shared_memory<attention_backward_dq_kernel<kBucket>>(dq_bytes);
    allow_shared_memory<attention_backward_dkv_kernel<kBucket>>(dkv_bytes);
    attention_backward_dq_kernel<kBucket><<<grid, kThreads, dq_bytes, stream>>>(
        qkv, valid, out, lse, dout, dqkv, delta, static_cast<int>(seq), static_cast<int>(heads),
        static_cast<int>(head_dim), scale_log2, scale, causal);
    CUDA_LAUNCH_CHECK();
    attention_backward_dkv_kernel<kBucket><<<grid, kThreads, dkv_bytes, stream>>>(
        qkv, valid, lse, delta, dout, dqkv, static_cast<int>(seq), static_cast<int>(heads),
        static_cast<int>(head_dim), scale_log2, scale, causal);
    CUDA_LAUNCH_CHECK();
  });
  CUDA_CHECK(cudaFreeAsync(delta, stream));
}

}  // namespace muonrec::kernels::cuda
