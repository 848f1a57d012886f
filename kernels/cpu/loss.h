// CPU reference: softmax cross-entropy over a catalogue, with ignored (negative) targets.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// loss[0] = mean over rows with target >= 0 of logsumexp(logits[r]) - logits[r, target[r]].
// Saves logsumexp per row and valid_count[0] (the number of counted rows) for the backward.
// targets must be < classes (the engine op checks).
void cross_entropy_forward(const float* logits, const int64_t* targets, float* loss, float* logsumexp,
                           float* valid_count, int64_t rows, int64_t classes);
// dlogits[r, c] = dloss[0] * (softmax(logits[r])[c] - [c == target[r]]) / valid_count, 0 for
// ignored rows. dloss is a one-element array (the upstream gradient, kept on the device).
void cross_entropy_backward(const float* logits, const int64_t* targets, const float* logsumexp,
                            const float* valid_count, const float* dloss, float* dlogits, int64_t rows,
                            int64_t classes);

// One row of that gradient over a window of `width` logits starting at class chunk_begin (the whole
// row: chunk_begin 0, width = classes): dz[c] = (exp(z[c] - logsumexp) - [c == target]) * factor,
// all 0 when target < 0. z and dz may be the same array. Shared by the full and the chunked loss.
void cross_entropy_gradient_row(const float* z, int64_t target, float logsumexp, float factor, int64_t width,
                                int64_t chunk_begin, float* dz);

}  // namespace muonrec::kernels::cpu
