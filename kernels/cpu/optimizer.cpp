#include "muonrec/kernels/cpu/optimizer.h"

#include <cmath>
#include <cstring>

namespace muonrec::kernels::cpu {

void adamw_multi_tensor(const AdamWTensor* tensors, const TensorChunk* chunks, int64_t chunk_count,
                        const AdamWHyper* hyper) {
  const AdamWStepFactors factors = adamw_step_factors(*hyper);
  for (int64_t c = 0; c < chunk_count; ++c) {
    const AdamWTensor& t = tensors[chunks[c].tensor];
    for (int64_t i = chunks[c].begin; i < chunks[c].end; ++i) adamw_update_element(t, i, *hyper, factors);
  }
}

}  // namespace muonrec::kernels::cpu
