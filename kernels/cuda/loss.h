// CUDA launchers: softmax cross-entropy with ignored (negative) targets (contracts of
// kernels/cpu/loss.h). Loss, count and upstream gradient stay in device memory: no host sync.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace muonrec::kernels::cuda {

// loss[0] = mean over rows with target >= 0 of logsumexp(logits[r]) - logits[r, target[r]]; saves
// logsumexp per row and valid_count[0]. targets must be < classes (the engine op checks).
void cross_entropy_forward(const float* logits, const int64_t* targets, float* loss, float* logsumexp,
                           float* valid_count, int64_t rows, int64_t classes, cudaStream_t stream);
// dlogits[r, c] = dloss[0] * (softmax(logits[r])[c] - [c == target[r]]) / valid_count[0], 0 for
// ignored rows. dloss and valid_count are one-element device arrays.
void cross_entropy_backward(const float* logits, const int64_t* targets, const float* logsumexp,
                            const float* valid_count, const float* dloss, float* dlogits, int64_t rows,
                            int64_t classes, cudaStream_t stream);

}  // namespace muonrec::kernels::cuda
