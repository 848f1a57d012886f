#include "models/sasrec.h"

#include <cmath>

#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"

namespace muonrec {

SASRec::SASRec(const ModelConfig& config, Device device, uint64_t seed) : SequentialModel(config, device) {
  MUONREC_CHECK(config.n_items > 0 && config.d > 0 && config.max_len > 0 && config.blocks >= 0,
                "sasrec: n_items, d and max_len must be positive");
  MUONREC_CHECK(config.heads > 0 && config.d % config.heads == 0, "sasrec: d={} is not divisible by heads={}",
                config.d, config.heads);
  PhiloxGenerator gen(seed);
  const int64_t d = config.d, ff = config.ff > 0 ? config.ff : config.d;
  // Item row 0 is padding: zero, as torch's padding_idx leaves it.
  Tensor item = init_normal({config.n_items + 1, d}, 0.02f, gen, Device::CPU);
  std::fill(item.data<float>(), item.data<float>() + d, 0.0f);
  item_ = params_.add("item.weight", item.to(device), /*embedding=*/true);
  pos_ = params_.add("pos.weight", init_normal({config.max_len, d}, 0.02f, gen, device), /*embedding=*/true);
  for (int64_t b = 0; b < config.blocks; ++b) {
    const std::string prefix = "blocks." + std::to_string(b) + ".";
    Block block;
    block.ln1 = LayerNorm(params_, prefix + "ln1", d, 1e-5f, device);
    block.qkv = Linear(params_, prefix + "qkv", d, 3 * d, true, gen, device);
    block.proj = Linear(params_, prefix + "proj", d, d, true, gen, device);
    block.ln2 = LayerNorm(params_, prefix + "ln2", d, 1e-5f, device);
    block.fc1 = Linear(params_, prefix + "fc1", d, ff, true, gen, device);
    block.fc2 = Linear(params_, prefix + "fc2", ff, d, true, gen, device);
    blocks_.push_back(block);
  }
  ln_ = LayerNorm(params_, "ln", d, 1e-5f, device);
}

Tensor SASRec::hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& gen) {
  NVTX_RANGE("sasrec.hidden");
  const int64_t T = batch.ids.dim(1);
  MUONREC_CHECK(T <= config_.max_len, "sasrec: window {} exceeds max_len {}", T, config_.max_len);
  const float p = config_.dropout;
  Tensor x = ops::scale(ops::embedding(item_, batch.ids), std::sqrt(static_cast<float>(config_.d)));
  x = ops::add(x, pos_.narrow_rows(0, T));
  x = ops::scale_rows(ops::dropout(x, p, gen, training), batch.valid);
  for (const Block& block : blocks_) {
    NVTX_RANGE("sasrec.block");
    Tensor a = ops::causal_attention(block.qkv(block.ln1(x)), batch.valid, static_cast<int>(config_.heads));
    x = ops::add(x, ops::dropout(block.proj(a), p, gen, training));
    Tensor f = ops::dropout(ops::gelu(block.fc1(block.ln2(x))), p, gen, training);
    x = ops::add(x, ops::dropout(block.fc2(f), p, gen, training));
  }
  return ln_(x);
}

Tensor SASRec::scores(const Tensor& h) {
  NVTX_RANGE("sasrec.scores");
  return ops::linear(h, item_.narrow_rows(1, config_.n_items));
}

}  // namespace muonrec
