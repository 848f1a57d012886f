#include "models/transformer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/ops.h"

namespace muonrec {

TransformerEncoder::TransformerEncoder(ParameterList& params, const ModelConfig& config, int64_t item_rows,
                                       PhiloxGenerator& gen, Device device)
    : config_(config) {
  const char* kind = config.kind.c_str();
  MUONREC_CHECK(config.n_items > 0 && config.d > 0 && config.max_len > 0 && config.blocks >= 0,
                "{}: n_items, d and max_len must be positive", kind);
  MUONREC_CHECK(config.heads > 0 && config.d % config.heads == 0, "{}: d={} is not divisible by heads={}", kind,
                config.d, config.heads);
  const int64_t d = config.d, ff = config.ff > 0 ? config.ff : config.d;
  // Item row 0 is padding: zero, as torch's padding_idx leaves it.
  Tensor item = init_normal({item_rows, d}, 0.02f, gen, Device::CPU);
  std::fill(item.data<float>(), item.data<float>() + d, 0.0f);
  item_ = params.add("item.weight", item.to(device), /*embedding=*/true);
  pos_ = params.add("pos.weight", init_normal({config.max_len, d}, 0.02f, gen, device), /*embedding=*/true);
  blocks_ = TransformerBlocks(params, config.blocks, d, ff, gen, device);
  ln_ = LayerNorm(params, "ln", d, 1e-5f, device);
}

Tensor TransformerEncoder::forward(const SequenceBatch& batch, bool causal, bool training,
                                   PhiloxGenerator& gen) const {
  NVTX_RANGE("transformer.forward");
  const int64_t T = batch.ids.dim(1);
  MUONREC_CHECK(T <= config_.max_len, "{}: window {} exceeds max_len {}", config_.kind, T, config_.max_len);
  const float p = config_.dropout;
  Tensor x = ops::scale(ops::embedding(item_, batch.ids), std::sqrt(static_cast<float>(config_.d)));
  x = ops::add(x, pos_.narrow_rows(0, T));
  x = ops::scale_rows(ops::dropout(x, p, gen, training), batch.valid);
  return ln_(blocks_.forward(x, batch.valid, config_.heads, causal, p, training, gen));
}

TransformerBlocks::TransformerBlocks(ParameterList& params, int64_t count, int64_t d, int64_t ff,
                                     PhiloxGenerator& gen, Device device) {
  for (int64_t b = 0; b < count; ++b) {
    const std::string prefix = "blocks." + std::to_string(b) + ".";
    Block block;
    block.ln1 = LayerNorm(params, prefix + "ln1", d, 1e-5f, device);
    block.qkv = Linear(params, prefix + "qkv", d, 3 * d, true, gen, device);
    block.proj = Linear(params, prefix + "proj", d, d, true, gen, device);
    block.ln2 = LayerNorm(params, prefix + "ln2", d, 1e-5f, device);
    block.fc1 = Linear(params, prefix + "fc1", d, ff, true, gen, device);
    block.fc2 = Linear(params, prefix + "fc2", ff, d, true, gen, device);
    blocks_.push_back(block);
  }
}

Tensor TransformerBlocks::finish_block(const Block& block, Tensor x, const Tensor& a, float p, bool training,
                                       PhiloxGenerator& gen) {
  x = ops::add(x, ops::dropout(block.proj(a), p, gen, training));
  Tensor f = ops::dropout(ops::gelu(block.fc1(block.ln2(x))), p, gen, training);
  return ops::add(x, ops::dropout(block.fc2(f), p, gen, training));
}

Tensor TransformerBlocks::forward(Tensor x, const Tensor& valid, int64_t heads, bool causal, float p, bool training,
                                  PhiloxGenerator& gen, Cache* cache) const {
  if (cache) {
    MUONREC_CHECK(causal && !training, "transformer: a KV cache is for causal evaluation only");
    *cache = Cache();
    cache->valid = valid;
  }
  for (const Block& block : blocks_) {
    NVTX_RANGE("transformer.block");
    Tensor qkv = block.qkv(block.ln1(x));
    if (cache) cache->qkv.push_back(qkv);
    Tensor a = ops::attention(qkv, valid, static_cast<int>(heads), causal);
    x = finish_block(block, x, a, p, training, gen);
  }
  return x;
}

Tensor TransformerBlocks::forward_continued(Tensor x, const Cache& cache, const std::vector<int64_t>& context_rows,
                                            int64_t heads) const {
  NVTX_RANGE("transformer.forward_continued");
  MUONREC_CHECK(cache.qkv.size() == blocks_.size(), "transformer: a cache of {} blocks for {} blocks",
                cache.qkv.size(), blocks_.size());
  PhiloxGenerator no_dropout(0);
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const Block& block = blocks_[b];
    Tensor a = ops::attention_continued(block.qkv(block.ln1(x)), cache.qkv[b], cache.valid, context_rows,
                                        static_cast<int>(heads));
    x = finish_block(block, x, a, 0.0f, false, no_dropout);
  }
  return x;
}

}  // namespace muonrec
