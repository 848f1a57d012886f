#include "muonrec/models/sasrec.h"

#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {

SASRec::SASRec(const ModelConfig& config, Device device, uint64_t seed) : SequentialModel(config, device) {
  PhiloxGenerator gen(seed);
  encoder_ = TransformerEncoder(params_, config, config.item_table_rows(), gen, device);
}

Tensor SASRec::hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& gen) {
  NVTX_RANGE("sasrec.hidden");
  return encoder_.forward(batch, /*causal=*/true, training, gen);
}

Tensor SASRec::scoring_matrix() { return encoder_.item().narrow_rows(1, config_.n_items); }

}  // namespace muonrec
