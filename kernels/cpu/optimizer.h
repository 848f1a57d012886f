// CPU reference: the multi-tensor AdamW step (the contract of the fused CUDA kernel).
#pragma once

#include <cstdint>

#include "muonrec/kernels/adamw_math.h"

namespace muonrec::kernels::cpu {

// Applies one AdamW step to every element of every chunk. `hyper` is a host pointer here.
void adamw_multi_tensor(const AdamWTensor* tensors, const TensorChunk* chunks, int64_t chunk_count,
                        const AdamWHyper* hyper);

}  // namespace muonrec::kernels::cpu
