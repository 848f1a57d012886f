#include "muonrec/models/bert4rec.h"

#include <algorithm>

#include "muonrec/data/batcher.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {
namespace {

// Row-major [rows, T] windows shifted one position to the left, with last[r] in column T-1.
// Both hooks use it: the batcher's windows hold T items, and BERT4Rec's last column is either the
// training window's final item (the batcher's last target) or the [MASK] to be scored.
std::vector<int64_t> shift_left_and_append(const std::vector<int64_t>& ids, int64_t rows, int64_t T,
                                           const std::vector<int64_t>& last) {
  MUONREC_CHECK(rows >= 0 && T >= 1 && static_cast<int64_t>(ids.size()) == rows * T,
                "bert4rec: a batch of {} ids does not fill [{}, {}]", ids.size(), rows, T);
  MUONREC_CHECK(static_cast<int64_t>(last.size()) == rows,
                "bert4rec: a batch of {} rows needs one last training item per row, got {}", rows, last.size());
  std::vector<int64_t> out(ids.size(), 0);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(ids.begin() + r * T + 1, ids.begin() + (r + 1) * T, out.begin() + r * T);
    out[r * T + T - 1] = last[r];
  }
  return out;
}

}  // namespace

ClozeWindows cloze_mask(const std::vector<int64_t>& items, int64_t rows, int64_t T, int64_t mask_token,
                        float mask_prob, uint64_t seed, uint64_t offset) {
  MUONREC_CHECK(rows >= 0 && T >= 1 && static_cast<int64_t>(items.size()) == rows * T,
                "cloze_mask: {} items do not fill [{}, {}]", items.size(), rows, T);
  MUONREC_CHECK(mask_prob > 0.0f && mask_prob <= 1.0f, "cloze_mask: mask_prob must be in (0, 1], got {}", mask_prob);
  ClozeWindows out{items, std::vector<int64_t>(items.size(), 0)};
  for (int64_t r = 0; r < rows; ++r) {
    int64_t real = 0, masked = 0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = r * T + t;
      if (items[i] <= 0) continue;
      ++real;
      if (philox_uniform(seed, offset, static_cast<uint64_t>(i)) < mask_prob) {
        out.ids[i] = mask_token;
        out.targets[i] = items[i];
        ++masked;
      }
    }
    if (real == 0 || masked > 0) continue;
    // The k-th item of the row (items are not necessarily contiguous in a hand-made window).
    const float u = philox_uniform(seed, offset, static_cast<uint64_t>(rows * T + r));
    int64_t k = std::min(static_cast<int64_t>(u * static_cast<float>(real)), real - 1);
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = r * T + t;
      if (items[i] <= 0 || k-- > 0) continue;
      out.ids[i] = mask_token;
      out.targets[i] = items[i];
      break;
    }
  }
  return out;
}

BERT4Rec::BERT4Rec(const ModelConfig& config, Device device, uint64_t seed) : SequentialModel(config, device) {
  // The item table has the [MASK] row only for kind "bert4rec" (ModelConfig::item_table_rows).
  MUONREC_CHECK(config.kind == "bert4rec", "bert4rec: the config is for model '{}'", config.kind);
  MUONREC_CHECK(config.mask_prob > 0.0f && config.mask_prob <= 1.0f, "bert4rec: mask_prob must be in (0, 1], got {}",
                config.mask_prob);
  PhiloxGenerator gen(seed);
  encoder_ = TransformerEncoder(params_, config, config.item_table_rows(), gen, device);
}

Tensor BERT4Rec::hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& gen) {
  NVTX_RANGE("bert4rec.hidden");
  return encoder_.forward(batch, /*causal=*/false, training, gen);
}

Tensor BERT4Rec::scoring_matrix() { return encoder_.item().narrow_rows(1, config_.n_items); }

SequenceBatch BERT4Rec::prepare_training_batch(const data::Batch& batch, PhiloxGenerator& generator) {
  NVTX_RANGE("bert4rec.cloze");
  // The batcher's training windows hold inputs ids[t] and next items targets[t] = ids[t+1]; the
  // last T items of the user's training part are therefore ids[1..T) followed by the newest one
  // (targets[T-1], except for a training part of one item, which has neither input nor target).
  const std::vector<int64_t> window = shift_left_and_append(batch.ids, batch.rows, batch.T, batch.last_train_items);
  const ClozeWindows cloze = cloze_mask(window, batch.rows, batch.T, mask_token(), config_.mask_prob,
                                        generator.seed(), generator.next_offset());
  return make_sequence_batch(cloze.ids, cloze.targets, {}, batch.rows, batch.T, device_);
}

SequenceBatch BERT4Rec::prepare_eval_batch(const data::Batch& batch) {
  const std::vector<int64_t> masks(static_cast<size_t>(batch.rows), mask_token());
  const std::vector<int64_t> ids = shift_left_and_append(batch.ids, batch.rows, batch.T, masks);
  const std::vector<int64_t> no_targets(ids.size(), 0);
  return make_sequence_batch(ids, no_targets, {}, batch.rows, batch.T, device_);
}

}  // namespace muonrec
