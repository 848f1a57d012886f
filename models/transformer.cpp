#include "muonrec/models/transformer.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {

TransformerEncoder::TransformerEncoder(ParameterList& params, const ModelConfig& config, int64_t item_rows,
                                       PhiloxGenerator& gen, Device device)
    : config_(config) {
  const char* kind = config.kind.c_str();
  MUONREC_CHECK(config.n_items > 0 && config.d > 0 && config.max_len > 0 && config.blocks >= 0,
                "{}: n_items, d and max_len must be positive", kind);
  const int64_t d = config.d, ff = config.ff > 0 ? config.ff : config.d;
  const int64_t attention = attention_width(kind, d, config.heads, config.head_dim);
  // Item row 0 is padding: zero, as torch's padding_idx leaves it.
  Tensor item = init_normal({item_rows, d}, 0.02f, gen, Device::CPU);
  std::fill(item.data<float>(), item.data<float>() + d, 0.0f);
  item_ = params.add("item.weight", item.to(device), /*embedding=*/true);
  pos_ = params.add("pos.weight", init_normal({config.max_len, d}, 0.02f, gen, device), /*embedding=*/true);
  blocks_ = TransformerBlocks(params, config.blocks, d, attention, ff, gen, device);
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

int64_t attention_width(const char* who, int64_t d, int64_t heads, int64_t head_dim) {
  MUONREC_CHECK(heads > 0, "{}: heads must be positive, got {}", who, heads);
  MUONREC_CHECK(head_dim >= 0, "{}: head_dim must be positive (or 0: d / heads), got {}", who, head_dim);
  if (head_dim > 0) return heads * head_dim;
  MUONREC_CHECK(d % heads == 0, "{}: d={} is not divisible by heads={} (or set head_dim)", who, d, heads);
  return d;
}

TransformerBlocks::TransformerBlocks(ParameterList& params, int64_t count, int64_t d, int64_t attention, int64_t ff,
                                     PhiloxGenerator& gen, Device device, const std::string& names) {
  for (int64_t b = 0; b < count; ++b) {
    const std::string prefix = names + std::to_string(b) + ".";
    Block block;
    block.ln1 = LayerNorm(params, prefix + "ln1", d, 1e-5f, device);
    block.qkv = Linear(params, prefix + "qkv", d, 3 * attention, true, gen, device);
    block.proj = Linear(params, prefix + "proj", attention, d, true, gen, device);
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

namespace {

// The last position of each row of x [N, S, width]: [N, 1, width].
Tensor last_positions(const Tensor& x) {
  const int64_t N = x.dim(0), S = x.dim(1), width = x.dim(2);
  if (S == 1) return x;
  std::vector<int64_t> last(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) last[n] = n * S + S - 1;
  return ops::embedding(x.reshape({N * S, width}), Tensor::from_i64(last, {N}, x.device())).reshape({N, 1, width});
}

}  // namespace

Tensor TransformerBlocks::forward_continued(Tensor x, Cache& cache, const std::vector<int64_t>& context_rows,
                                            const std::vector<int64_t>& parent_rows, int64_t heads) const {
  NVTX_RANGE("transformer.forward_continued");
  const int64_t N = x.dim(0);
  MUONREC_CHECK(x.rank() == 3 && x.dim(1) == 1, "transformer: a continuation takes one new position per beam, got {}",
                shape_str(x.shape()));
  MUONREC_CHECK(cache.qkv.size() == blocks_.size(), "transformer: a cache of {} blocks for {} blocks",
                cache.qkv.size(), blocks_.size());
  const bool first = cache.generated.empty();
  const int64_t beams_before = first ? 0 : cache.generated[0].dim(0), S_before = first ? 0 : cache.generated[0].dim(1);
  MUONREC_CHECK(static_cast<int64_t>(parent_rows.size()) == (first ? 0 : N),
                "transformer: {} parent rows for {} beams ({} before them)", parent_rows.size(), N,
                first ? "no generated positions" : "generated positions");
  // Beam n's positions are its parent's S-1 generated ones, then its newest: rows of one table
  // [the previous beams' generated positions; the newest positions] per block.
  const int64_t S = S_before + 1, table_rows = beams_before * S_before + N;
  std::vector<int64_t> ids(static_cast<size_t>(N * S));
  for (int64_t n = 0; n < N; ++n) {
    if (!first)
      MUONREC_CHECK(parent_rows[n] >= 0 && parent_rows[n] < beams_before,
                    "transformer: beam {} continues beam {}, outside 0..{}", n, parent_rows[n], beams_before - 1);
    for (int64_t j = 0; j < S_before; ++j) ids[n * S + j] = parent_rows[n] * S_before + j;
    ids[n * S + S_before] = beams_before * S_before + n;
  }
  const Tensor position_ids = Tensor::from_i64(ids, {N * S}, x.device());
  PhiloxGenerator no_dropout(0);
  std::vector<Tensor> generated;
  for (size_t b = 0; b < blocks_.size(); ++b) {
    const Block& block = blocks_[b];
    Tensor qkv = block.qkv(block.ln1(x));
    if (!first) {
      const int64_t width = qkv.dim(2);
      Tensor table = Tensor::empty({table_rows, width}, DType::F32, x.device());
      table.narrow_rows(0, beams_before * S_before).copy_from(cache.generated[b].reshape({beams_before * S_before, width}));
      table.narrow_rows(beams_before * S_before, N).copy_from(qkv.reshape({N, width}));
      qkv = ops::embedding(table, position_ids).reshape({N, S, width});
    }
    generated.push_back(qkv);
    Tensor a = ops::attention_continued(qkv, cache.qkv[b], cache.valid, context_rows, static_cast<int>(heads));
    x = finish_block(block, x, last_positions(a), 0.0f, false, no_dropout);
  }
  cache.generated = std::move(generated);
  return x;
}

Tensor TransformerBlocks::forward_with_context(Tensor x, const Tensor& context, const Tensor& context_valid,
                                               int64_t heads, float p, bool training, PhiloxGenerator& gen) const {
  NVTX_RANGE("transformer.forward_with_context");
  MUONREC_CHECK(x.rank() == 3 && context.rank() == 3 && x.dim(0) == context.dim(0) && x.dim(2) == context.dim(2) &&
                    context_valid.shape() == Shape({context.dim(0), context.dim(1)}),
                "transformer: x {} after a context {} with key mask {}", shape_str(x.shape()),
                shape_str(context.shape()), shape_str(context_valid.shape()));
  const int64_t N = x.dim(0), S = x.dim(1), T = context.dim(1), L = T + S, d = x.dim(2);
  const Device device = x.device();
  // Row n of the joined batch is context row n's T positions, then x row n's S: rows of the table
  // [every context position; every x position], which each block projects in one product.
  std::vector<int64_t> join(static_cast<size_t>(N * L)), pick(static_cast<size_t>(N * S));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t t = 0; t < T; ++t) join[n * L + t] = n * T + t;
    for (int64_t s = 0; s < S; ++s) {
      join[n * L + T + s] = N * T + n * S + s;
      pick[n * S + s] = n * L + T + s;
    }
  }
  const Tensor join_ids = Tensor::from_i64(join, {N * L}, device);
  const Tensor pick_ids = Tensor::from_i64(pick, {N * S}, device);
  // The key mask of the joined rows, gathered on the device (x's positions are all keys).
  const Tensor valid = ops::embedding(ops::concat_rows(context_valid.reshape({N * T, 1}),
                                                       Tensor::full({N * S, 1}, 1.0f, device)),
                                      join_ids)
                           .reshape({N, L});
  const Tensor context_rows = context.reshape({N * T, d});
  for (const Block& block : blocks_) {
    NVTX_RANGE("transformer.block");
    Tensor table = block.qkv(block.ln1(ops::concat_rows(context_rows, x.reshape({N * S, d}))));
    const int64_t width = table.dim(1);
    Tensor joined = ops::embedding(table, join_ids).reshape({N, L, width});
    Tensor a = ops::attention(joined, valid, static_cast<int>(heads), /*causal=*/true);
    Tensor own = ops::embedding(a.reshape({N * L, width / 3}), pick_ids).reshape({N, S, width / 3});
    x = finish_block(block, x, own, p, training, gen);
  }
  return x;
}

TransformerBlocks::Cache TransformerBlocks::context_cache(const Tensor& context, const Tensor& context_valid) const {
  Cache cache;
  cache.valid = context_valid;
  for (const Block& block : blocks_) cache.qkv.push_back(block.qkv(block.ln1(context)));
  return cache;
}

}  // namespace muonrec
