// CUDA launchers of the chunked softmax cross-entropy steps (contracts of kernels/cpu/chunked_ce.h);
// every pointer is device memory and nothing is read back to the host.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

void ce_chunk_forward(const float* logits, const int64_t* targets, int64_t rows, int64_t width, int64_t chunk_begin,
                      float* row_max, float* row_sum, float* target_logit, cudaStream_t stream);
void ce_finish(const float* row_max, const float* row_sum, const float* target_logit, const int64_t* targets,
               int64_t rows, float* logsumexp, float* loss, float* valid_count, cudaStream_t stream);
void ce_chunk_backward(float* logits, const int64_t* targets, const float* logsumexp, const float* valid_count,
                       const float* dloss, int64_t rows, int64_t width, int64_t chunk_begin, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
