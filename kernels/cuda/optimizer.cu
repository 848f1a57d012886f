#include <cstring>

#include "engine/cuda_check.h"
#include "engine/nvtx.h"
#include "kernels/cuda/optimizer.h"

namespace muonrec::kernels::cuda {
namespace {

constexpr unsigned kBlock = 512;

__global__ void adamw_multi_tensor_kernel(const AdamWTensor* tensors, const TensorChunk* chunks,
                                          const AdamWHyper* hyper_ptr) {
  // The step factors need double-precision pow: once per block, shared through shared memory.
  __shared__ AdamWHyper hyper;
  __shared__ AdamWStepFactors factors;
  if (threadIdx.x == 0) {
    hyper = *hyper_ptr;
    factors = adamw_step_factors(hyper);
  }
  __syncthreads();
  const TensorChunk chunk = chunks[blockIdx.x];
  const AdamWTensor t = tensors[chunk.tensor];
  for (int64_t i = chunk.begin + threadIdx.x; i < chunk.end; i += blockDim.x) adamw_update_element(t, i, hyper, factors);
}

}  // namespace

void adamw_multi_tensor(const AdamWTensor* tensors, const TensorChunk* chunks, int64_t chunk_count,
                        const AdamWHyper* hyper, cudaStream_t stream) {
  NVTX_RANGE("adamw_multi_tensor");
  if (chunk_count == 0) return;
  adamw_multi_tensor_kernel<<<static_cast<unsigned>(chunk_count), kBlock, 0, stream>>>(tensors, chunks, hyper);
  CUDA_LAUNCH_CHECK();
}

}  // namespace muonrec::kernels::cuda
