// CUDA launcher of the fused multi-tensor AdamW step (contract of kernels/cpu/optimizer.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "muonrec/kernels/adamw_math.h"

namespace muonrec::kernels::cuda {

// One launch updates every chunk (one block per chunk). tensors, chunks and hyper are device
// pointers; the table stays valid across steps, and hyper is rewritten by the host before each.
void adamw_multi_tensor(const AdamWTensor* tensors, const TensorChunk* chunks, int64_t chunk_count,
                        const AdamWHyper* hyper, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
