// CUDA launchers of the chunked softmax cross-entropy (contract of kernels/cpu/chunked_ce.h); every
// pointer is device memory and nothing is read back to the host. Under BF16 matmul precision
// (engine/precision.h) the products read bf16 copies of h and weight, and the logits tiles are
// kept in bf16 (rounded once, as under torch's bf16 autocast); the softmax statistics, the loss and
// the products' accumulation stay fp32.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

void linear_ce_forward(const float* h, const float* weight, const int64_t* targets, int64_t rows, int64_t dim,
                       int64_t classes, float scale, int64_t chunk, float* logsumexp, float* loss, float* valid_count,
                       cudaStream_t stream);
void linear_ce_backward(const float* h, const float* weight, const int64_t* targets, const float* logsumexp,
                        const float* valid_count, const float* dloss, int64_t rows, int64_t dim, int64_t classes,
                        float scale, int64_t chunk, float* dh, float* dweight, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
