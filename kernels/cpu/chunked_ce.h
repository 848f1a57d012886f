// CPU reference of the softmax cross-entropy over a catalogue scored by a matrix product:
//   loss = mean over rows r with targets[r] >= 0 of logsumexp_c(z[r, c]) - z[r, targets[r]],
//   z = scale * h[rows, dim] @ weight[classes, dim]^T,
// computed over tiles of (a block of rows) x (`chunk` items), so the rows x classes logits never
// exist at once. See ops::linear_cross_entropy; kernels/cuda/chunked_ce.h has the same contract.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// Writes loss[0], valid_count[0] (the number of rows with a target >= 0; the loss is 0 when there
// are none) and, for the backward, logsumexp[r] (0 on ignored rows). dim, classes and chunk >= 1.
void linear_ce_forward(const float* h, const float* weight, const int64_t* targets, int64_t rows, int64_t dim,
                       int64_t classes, float scale, int64_t chunk, float* logsumexp, float* loss, float* valid_count);

// Overwrites dh [rows, dim] and dweight [classes, dim] with the gradients of dloss[0] * loss. Each
// tile's logits are recomputed and turned into (softmax - onehot) * dloss / valid_count (0 on
// ignored rows) before the two products that apply them to both factors.
void linear_ce_backward(const float* h, const float* weight, const int64_t* targets, const float* logsumexp,
                        const float* valid_count, const float* dloss, int64_t rows, int64_t dim, int64_t classes,
                        float scale, int64_t chunk, float* dh, float* dweight);

}  // namespace muonrec::kernels::cpu
