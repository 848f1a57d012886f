#include <algorithm>
#include <cstdint>

#include "muonrec/engine/cuda_check.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/kernels/cuda/optimizer.h"
#include "muonrec/kernels/cuda/vector_io.cuh"

namespace muonrec::kernels::cuda {
namespace {

// AdamW moves 28 bytes per parameter (read p, g, m, v; write p, m, v) and does a few dozen flops:
// it is a pure bandwidth problem. What decides its speed is how many bytes each SM keeps in flight:
// every thread loads 4 elements of each of the 4 input streams with 16-byte loads, twice per loop
// trip (kUnroll), before it computes or stores anything: 128 bytes per thread, and with at least
// four blocks resident (the register budget that leaves is enough) 128 KB per SM, several times
// what the memory latency needs to keep HBM busy.
constexpr unsigned kBlock = 256;
constexpr int kMinBlocksPerSm = 4;
constexpr int kVector = 4;
constexpr int kUnroll = 2;

__device__ __forceinline__ void update4(const float4& p, const float4& g, const float4& m, const float4& v,
                                        const AdamWHyper& h, const AdamWStepFactors& f, AdamWElement out[kVector]) {
  out[0] = adamw_update_values(p.x, g.x, m.x, v.x, h, f);
  out[1] = adamw_update_values(p.y, g.y, m.y, v.y, h, f);
  out[2] = adamw_update_values(p.z, g.z, m.z, v.z, h, f);
  out[3] = adamw_update_values(p.w, g.w, m.w, v.w, h, f);
}

// Elements [begin, end) of t, with param, exp_avg, exp_avg_sq (and the bf16 copy, 8 bytes per 4)
// 16-byte aligned at begin. Each loop trip covers kVector * kUnroll * blockDim.x whole elements; the
// rest (fewer than that) goes one element per thread.
__device__ __forceinline__ void update_vectorized(const AdamWTensor& t, int64_t begin, int64_t end,
                                                  const AdamWHyper& h, const AdamWStepFactors& f) {
  const bool grad_aligned = aligned_to(t.grad + begin, 16);
  const int64_t trip = static_cast<int64_t>(kVector) * kUnroll * blockDim.x;
  const int64_t vector_end = begin + (end - begin) / trip * trip;
  for (int64_t trip_begin = begin; trip_begin < vector_end; trip_begin += trip) {
    // All loads of the trip first (the compiler cannot move them past the stores by itself: for
    // all it knows the four arrays overlap).
    float4 p[kUnroll], g[kUnroll], m[kUnroll], v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = trip_begin + kVector * (threadIdx.x + static_cast<int64_t>(u) * blockDim.x);
      p[u] = load_float4(t.param + i, true);
      g[u] = load_float4(t.grad + i, grad_aligned);
      m[u] = load_float4(t.exp_avg + i, true);
      v[u] = load_float4(t.exp_avg_sq + i, true);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t i = trip_begin + kVector * (threadIdx.x + static_cast<int64_t>(u) * blockDim.x);
      AdamWElement e[kVector];
      update4(p[u], g[u], m[u], v[u], h, f, e);
      store_float4(t.param + i, make_float4(e[0].param, e[1].param, e[2].param, e[3].param));
      store_float4(t.exp_avg + i, make_float4(e[0].exp_avg, e[1].exp_avg, e[2].exp_avg, e[3].exp_avg));
      store_float4(t.exp_avg_sq + i, make_float4(e[0].exp_avg_sq, e[1].exp_avg_sq, e[2].exp_avg_sq, e[3].exp_avg_sq));
      if (t.param_bf16) {
        const uint32_t low = adamw_bf16_copy(e[0].param, i, h) |
                             static_cast<uint32_t>(adamw_bf16_copy(e[1].param, i + 1, h)) << 16;
        const uint32_t high = adamw_bf16_copy(e[2].param, i + 2, h) |
                              static_cast<uint32_t>(adamw_bf16_copy(e[3].param, i + 3, h)) << 16;
        __stcg(reinterpret_cast<uint2*>(t.param_bf16 + i), make_uint2(low, high));
      }
    }
  }
  for (int64_t i = vector_end + threadIdx.x; i < end; i += blockDim.x) adamw_update_element(t, i, h, f);
}

// A grid sized to fill the GPU once walks the chunk list; each block reads the hyperparameters and
// computes the step's double-precision factors once, whatever the number of chunks.
__global__ void __launch_bounds__(kBlock, kMinBlocksPerSm)
    adamw_multi_tensor_kernel(const AdamWTensor* __restrict__ tensors, const TensorChunk* __restrict__ chunks,
                              int64_t chunk_count, const AdamWHyper* __restrict__ hyper_ptr) {
  __shared__ AdamWHyper shared_hyper;
  __shared__ AdamWStepFactors shared_factors;
  if (threadIdx.x == 0) {
    shared_hyper = *hyper_ptr;
    shared_factors = adamw_step_factors(shared_hyper);
  }
  __syncthreads();
  const AdamWHyper h = shared_hyper;
  const AdamWStepFactors f = shared_factors;
  for (int64_t c = blockIdx.x; c < chunk_count; c += gridDim.x) {
    const TensorChunk chunk = chunks[c];
    const AdamWTensor t = tensors[chunk.tensor];
    // Parameters and moments are allocations of their own, so aligned wherever a chunk starts at a
    // multiple of 4; anything else (a view, an odd chunk) takes the element-wise loop.
    const bool vectorizable = aligned_to(t.param + chunk.begin, 16) && aligned_to(t.exp_avg + chunk.begin, 16) &&
                              aligned_to(t.exp_avg_sq + chunk.begin, 16) &&
                              (t.param_bf16 == nullptr || aligned_to(t.param_bf16 + chunk.begin, 8));
    if (vectorizable) {
      update_vectorized(t, chunk.begin, chunk.end, h, f);
    } else {
      for (int64_t i = chunk.begin + threadIdx.x; i < chunk.end; i += blockDim.x) adamw_update_element(t, i, h, f);
    }
  }
}

// Resident blocks that fill every SM once (queried once: the kernel and the device do not change).
unsigned adamw_grid_limit() {
  static const unsigned limit = [] {
    int device = 0, sms = 0, per_sm = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, adamw_multi_tensor_kernel, kBlock, 0));
    return static_cast<unsigned>(sms * (per_sm > 0 ? per_sm : 1));
  }();
  return limit;
}

}  // namespace

void adamw_multi_tensor(const AdamWTensor* tensors, const TensorChunk* chunks, int64_t chunk_count,
                        const AdamWHyper* hyper, cudaStream_t stream) {
  NVTX_RANGE("adamw_multi_tensor");
  if (chunk_count == 0) return;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(chunk_count, adamw_grid_limit()));
  adamw_multi_tensor_kernel<<<grid, kBlock, 0, stream>>>(tensors, chunks, chunk_count, hyper);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda
