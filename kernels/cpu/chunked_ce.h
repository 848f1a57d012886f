// CPU reference: the two per-chunk steps of a softmax cross-entropy computed over item chunks
// (logits never exist for the whole catalogue at once). See ops::linear_cross_entropy.
#pragma once

#include <cstdint>

namespace muonrec::kernels::cpu {

// Folds one chunk of logits [rows, width] (classes chunk_begin .. chunk_begin+width) into the
// running row maximum and sum of exponentials (online log-sum-exp), and picks up the logit of the
// target when it falls in this chunk. Before the first chunk: max = -inf, sum = 0.
void ce_chunk_forward(const float* logits, const int64_t* targets, int64_t rows, int64_t width, int64_t chunk_begin,
                      float* row_max, float* row_sum, float* target_logit);
// After the last chunk: logsumexp[r] = max + log(sum); loss[0] = mean over rows with target >= 0
// of logsumexp - target_logit; valid_count[0] = the number of such rows.
void ce_finish(const float* row_max, const float* row_sum, const float* target_logit, const int64_t* targets,
               int64_t rows, float* logsumexp, float* loss, float* valid_count);
// Turns a chunk of logits into d(loss)/d(logits) in place: (softmax - onehot) * dloss / count, and
// 0 on ignored rows. dloss and valid_count are one-element arrays.
void ce_chunk_backward(float* logits, const int64_t* targets, const float* logsumexp, const float* valid_count,
                       const float* dloss, int64_t rows, int64_t width, int64_t chunk_begin);

}  // namespace muonrec::kernels::cpu
