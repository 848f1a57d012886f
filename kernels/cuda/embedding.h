// CUDA launchers: embedding lookup and its deterministic backward (contracts of kernels/cpu/embedding.h).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// out[i, :] = weight[ids[i], :]. ids must lie in [0, rows) (the engine op checks).
void embedding_forward(const float* weight, const int64_t* ids, float* out, int64_t n_ids, int64_t rows, int64_t dim,
                       cudaStream_t stream);
// Accumulates into grad_weight, touching only the rows of ids that occur (contract of
// kernels/cpu/embedding.h): ids are stable-sorted (CUB radix sort on 32-bit keys) and each run of
// equal ids is summed in a fixed order (a warp per run, a block in fixed pieces for runs over 256),
// so the result is bit-identical from run to run (no float atomics). Stream-ordered scratch memory.
void embedding_backward(const float* grad_out, const int64_t* ids, float* grad_weight, int64_t n_ids, int64_t rows,
                        int64_t dim, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
