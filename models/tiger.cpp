#include "muonrec/models/tiger.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"
#include "muonrec/models/config_json.h"

namespace muonrec {

std::string TigerConfig::to_json() const {
  nlohmann::json j = {{"kind", "tiger"}, {"vocab_sizes", vocab_sizes}, {"max_items", max_items}, {"d", d},
                      {"blocks", blocks}, {"heads", heads},             {"ff", ff},               {"dropout", dropout},
                      {"head_dim", head_dim}, {"encoder_blocks", encoder_blocks}};
  return j.dump();
}

void TigerConfig::check_shape() const {
  MUONREC_CHECK(max_items > 0 && d > 0, "tiger: max_items and d must be positive");
  // Generation keeps each beam's positions in the blocks' cache: it needs a block to keep them in.
  MUONREC_CHECK(blocks >= 1 && encoder_blocks >= 0, "tiger: blocks must be >= 1 and encoder_blocks >= 0, got {} and {}",
                blocks, encoder_blocks);
  MUONREC_CHECK(dropout >= 0.0f && dropout < 1.0f, "tiger: dropout must be in [0, 1), got {}", dropout);
  attention_width("tiger", d, heads, head_dim);
}

TigerConfig TigerConfig::from_json(const std::string& text) {
  const nlohmann::json j = parse_config_json(text, "tiger config");
  TigerConfig c;
  auto field = [&](const char* name, auto& out) { read_config_field(j, name, out, "tiger config"); };
  std::string kind;
  field("kind", kind);
  MUONREC_CHECK(kind == "tiger", "tiger config: kind is '{}', not 'tiger'", kind);
  field("vocab_sizes", c.vocab_sizes);
  field("max_items", c.max_items);
  field("d", c.d);
  field("blocks", c.blocks);
  field("heads", c.heads);
  field("ff", c.ff);
  field("dropout", c.dropout);
  if (j.contains("head_dim")) field("head_dim", c.head_dim);
  if (j.contains("encoder_blocks")) field("encoder_blocks", c.encoder_blocks);
  return c;
}

TigerBatch make_tiger_batch(const SemanticIdVocab& vocab, const std::vector<int64_t>& ids,
                            const std::vector<int64_t>& positions, const std::vector<int64_t>& targets,
                            int64_t batch, int64_t T, Device device) {
  const size_t n = static_cast<size_t>(batch * T);
  MUONREC_CHECK(ids.size() == n && positions.size() == n && (targets.empty() || targets.size() == n),
                "tiger batch arrays do not match [{}, {}]", batch, T);
  const int64_t C = vocab.code_length();
  std::vector<int64_t> levels(n);
  std::vector<float> valid(n);
  std::vector<std::vector<int64_t>> target_positions(C), codes(C);
  for (size_t i = 0; i < n; ++i) {
    levels[i] = std::max<int64_t>(vocab.level_of(ids[i]), 0);
    valid[i] = ids[i] > 0 ? 1.0f : 0.0f;
    if (!targets.empty() && targets[i] > 0) {
      const int64_t level = vocab.level_of(targets[i]);
      target_positions[level].push_back(static_cast<int64_t>(i));
      codes[level].push_back(vocab.code_of(targets[i]));
    }
  }
  TigerBatch out;
  out.ids = Tensor::from_i64(ids, {batch, T}, device);
  out.positions = Tensor::from_i64(positions, {batch, T}, device);
  out.levels = Tensor::from_i64(levels, {batch, T}, device);
  out.valid = Tensor::from_f32(valid, {batch, T}, device);
  for (int64_t l = 0; l < C; ++l) {
    const auto count = static_cast<int64_t>(target_positions[l].size());
    out.target_positions.push_back(Tensor::from_i64(target_positions[l], {count}, device));
    out.target_codes.push_back(Tensor::from_i64(codes[l], {count}, device));
    out.target_counts.push_back(count);
    out.targets += count;
  }
  return out;
}

TigerBatch make_tiger_seq2seq_batch(const SemanticIdVocab& vocab, const std::vector<int64_t>& ids,
                                    const std::vector<int64_t>& positions, const std::vector<int64_t>& target_tokens,
                                    int64_t batch, int64_t T, Device device) {
  const int64_t C = vocab.code_length();
  MUONREC_CHECK(static_cast<int64_t>(target_tokens.size()) == batch * C,
                "tiger batch: {} target tokens for {} rows of {}-token codes", target_tokens.size(), batch, C);
  TigerBatch out = make_tiger_batch(vocab, ids, positions, {}, batch, T, device);
  // Decoder position l reads the target's token l - 1 (position 0, the start, reads none) and
  // predicts its token l.
  std::vector<int64_t> decoder_ids(target_tokens.size()), slots(target_tokens.size());
  std::vector<std::vector<int64_t>> target_positions(C), codes(C);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t l = 0; l < C; ++l) {
      const int64_t token = target_tokens[b * C + l];
      MUONREC_CHECK(vocab.level_of(token) == l, "tiger batch: target token {} of row {} is not at level {}", token, b,
                    l);
      decoder_ids[b * C + l] = l == 0 ? 0 : target_tokens[b * C + l - 1];
      slots[b * C + l] = l;
      target_positions[l].push_back(b * C + l);
      codes[l].push_back(vocab.code_of(token));
    }
  out.decoder_ids = Tensor::from_i64(decoder_ids, {batch, C}, device);
  out.decoder_slots = Tensor::from_i64(slots, {batch, C}, device);
  out.target_positions.clear();
  out.target_codes.clear();
  out.target_counts.clear();
  for (int64_t l = 0; l < C; ++l) {
    out.target_positions.push_back(Tensor::from_i64(target_positions[l], {batch}, device));
    out.target_codes.push_back(Tensor::from_i64(codes[l], {batch}, device));
    out.target_counts.push_back(batch);
  }
  out.targets = batch * C;
  return out;
}

TigerModel::TigerModel(const TigerConfig& config, Device device, uint64_t seed)
    : config_(config), vocab_(config.vocab_sizes), device_(device) {
  config.check_shape();
  PhiloxGenerator gen(seed);
  const int64_t d = config.d, ff = config.ff > 0 ? config.ff : config.d;
  const int64_t attention = attention_width("tiger", d, config.heads, config.head_dim);
  Tensor token = init_normal({vocab_.size(), d}, 0.02f, gen, Device::CPU);
  std::fill(token.data<float>(), token.data<float>() + d, 0.0f);  // padding row, as padding_idx
  token_ = params_.add("token.weight", token.to(device), /*embedding=*/true);
  pos_ = params_.add("pos.weight", init_normal({config.max_items + 1, d}, 0.02f, gen, device), /*embedding=*/true);
  level_ = params_.add("level.weight", init_normal({config.code_length(), d}, 0.02f, gen, device), /*embedding=*/true);
  blocks_ = TransformerBlocks(params_, config.blocks, d, attention, ff, gen, device);
  ln_ = LayerNorm(params_, "ln", d, 1e-5f, device);
  if (config.encoder_decoder()) {
    encoder_ = TransformerBlocks(params_, config.encoder_blocks, d, attention, ff, gen, device, "encoder.blocks.");
    encoder_ln_ = LayerNorm(params_, "encoder.ln", d, 1e-5f, device);
    slot_ = params_.add("decoder.slot.weight", init_normal({config.code_length(), d}, 0.02f, gen, device),
                        /*embedding=*/true);
  }
}

Tensor TigerModel::embed(const TigerBatch& batch, bool training, PhiloxGenerator& gen) const {
  Tensor x = ops::scale(ops::embedding(token_, batch.ids), std::sqrt(static_cast<float>(config_.d)));
  x = ops::add(x, ops::embedding(pos_, batch.positions));
  x = ops::add(x, ops::embedding(level_, batch.levels));
  return ops::scale_rows(ops::dropout(x, config_.dropout, gen, training), batch.valid);
}

Tensor TigerModel::encode(const TigerBatch& history, bool training, PhiloxGenerator& gen) const {
  const Tensor x = embed(history, training, gen);
  return encoder_ln_(
      encoder_.forward(x, history.valid, config_.heads, /*causal=*/false, config_.dropout, training, gen));
}

Tensor TigerModel::embed_decoder(const Tensor& ids, const Tensor& slots, bool training, PhiloxGenerator& gen) const {
  // Id 0 (the start) reads token row 0, the padding row: nothing else reads it unmasked, so in the
  // encoder-decoder it learns as part of the start's input.
  Tensor x = ops::scale(ops::embedding(token_, ids), std::sqrt(static_cast<float>(config_.d)));
  return ops::dropout(ops::add(x, ops::embedding(slot_, slots)), config_.dropout, gen, training);
}

Tensor TigerModel::hidden(const TigerBatch& batch, bool training, PhiloxGenerator& gen) {
  NVTX_RANGE("tiger.hidden");
  const int64_t T = batch.ids.dim(1), W = config_.window();
  MUONREC_CHECK(T <= W, "tiger: window {} exceeds the {} tokens of {} history items of {} codes{}", T, W,
                config_.max_items, config_.code_length(),
                config_.encoder_decoder() ? "" : " and the generated codes after them");
  MUONREC_CHECK(config_.encoder_decoder() == batch.decoder_ids.defined(), "tiger: a {} batch for a {} model",
                batch.decoder_ids.defined() ? "encoder-decoder" : "decoder-only",
                config_.encoder_decoder() ? "encoder-decoder" : "decoder-only");
  if (config_.encoder_decoder()) {
    const Tensor context = encode(batch, training, gen);
    const Tensor x = embed_decoder(batch.decoder_ids, batch.decoder_slots, training, gen);
    return ln_(blocks_.forward_with_context(x, context, batch.valid, config_.heads, config_.dropout, training, gen));
  }
  Tensor x = embed(batch, training, gen);
  return ln_(blocks_.forward(x, batch.valid, config_.heads, /*causal=*/true, config_.dropout, training, gen));
}

Tensor TigerModel::loss(const TigerBatch& batch, bool training, PhiloxGenerator& gen) {
  NVTX_RANGE("tiger.loss");
  MUONREC_CHECK(batch.targets > 0, "tiger: a training batch has no target tokens");
  Tensor h = hidden(batch, training, gen).reshape({-1, config_.d});
  Tensor total;
  for (int64_t l = 0; l < vocab_.code_length(); ++l) {
    if (batch.target_counts[l] == 0) continue;
    Tensor rows = ops::embedding(h, batch.target_positions[l]);
    Tensor table = token_.narrow_rows(vocab_.offset(l), vocab_.vocab(l));
    // Each level's mean, weighted by its share of the targets: the mean over all targets.
    Tensor part = ops::scale(ops::linear_cross_entropy(rows, table, batch.target_codes[l]),
                             static_cast<float>(batch.target_counts[l]) / static_cast<float>(batch.targets));
    total = total.defined() ? ops::add(total, part) : part;
  }
  return total;
}

std::vector<float> TigerModel::last_position_log_probs(const Tensor& h, int64_t level) const {
  const int64_t B = h.dim(0), T = h.dim(1), V = vocab_.vocab(level);
  std::vector<int64_t> last(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) last[b] = b * T + T - 1;
  Tensor last_h = ops::embedding(h.reshape({B * T, config_.d}), Tensor::from_i64(last, {B}, device_));
  std::vector<float> out = ops::linear(last_h, token_.narrow_rows(vocab_.offset(level), V)).to_f32_vector();
  // Log-softmax on the host (V is a codebook, a few hundred values per row).
  for (int64_t b = 0; b < B; ++b) {
    float* row = out.data() + b * V;
    const float max = *std::max_element(row, row + V);
    double sum = 0.0;
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - max));
    const float log_sum = max + static_cast<float>(std::log(sum));
    for (int64_t v = 0; v < V; ++v) row[v] -= log_sum;
  }
  return out;
}

std::vector<float> TigerModel::next_code_log_probs(const TigerBatch& batch, int64_t level) {
  NVTX_RANGE("tiger.next_code_log_probs");
  MUONREC_CHECK(!config_.encoder_decoder(), "tiger: next_code_log_probs is the decoder-only model's");
  NoGradGuard no_grad;
  PhiloxGenerator unused(0);
  return last_position_log_probs(hidden(batch, false, unused), level);
}

std::vector<float> TigerModel::start_generation(const TigerBatch& history, TransformerBlocks::Cache& cache) {
  NVTX_RANGE("tiger.start_generation");
  NoGradGuard no_grad;
  PhiloxGenerator unused(0);
  MUONREC_CHECK(history.ids.dim(1) <= config_.history_window(), "tiger: history window {} exceeds {} tokens",
                history.ids.dim(1), config_.history_window());
  if (config_.encoder_decoder()) {
    const int64_t B = history.ids.dim(0);
    cache = blocks_.context_cache(encode(history, false, unused), history.valid);
    std::vector<int64_t> rows(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) rows[b] = b;
    const Tensor start = embed_decoder(Tensor::zeros({B, 1}, DType::I64, device_),
                                       Tensor::zeros({B, 1}, DType::I64, device_), false, unused);
    return last_position_log_probs(ln_(blocks_.forward_continued(start, cache, rows, {}, config_.heads)), 0);
  }
  Tensor x = blocks_.forward(embed(history, false, unused), history.valid, config_.heads, /*causal=*/true, 0.0f,
                             false, unused, &cache);
  return last_position_log_probs(ln_(x), 0);
}

std::vector<float> TigerModel::continue_generation(TransformerBlocks::Cache& cache,
                                                   const std::vector<int64_t>& context_rows,
                                                   const std::vector<int64_t>& parent_rows,
                                                   const std::vector<int64_t>& tokens) {
  NVTX_RANGE("tiger.continue_generation");
  NoGradGuard no_grad;
  PhiloxGenerator unused(0);
  const auto N = static_cast<int64_t>(tokens.size());
  // The encoder-decoder's cache also holds the start position.
  const int64_t start = config_.encoder_decoder() ? 1 : 0;
  MUONREC_CHECK(start == 0 || !cache.generated.empty(), "tiger: continue_generation before start_generation");
  const int64_t S = cache.generated.empty() ? 1 : cache.generated[0].dim(1) + 1 - start;
  MUONREC_CHECK(S < vocab_.code_length() && static_cast<int64_t>(context_rows.size()) == N,
                "tiger: continuation {} of a {}-level code, with {} tokens for {} context rows", S,
                vocab_.code_length(), N, context_rows.size());
  for (int64_t n = 0; n < N; ++n)
    MUONREC_CHECK(vocab_.level_of(tokens[n]) == S - 1, "tiger: token {} of beam {} is not at level {}", tokens[n], n,
                  S - 1);
  if (config_.encoder_decoder()) {
    // The first code extends its user's start position, the start's row being the user's.
    const std::vector<int64_t>& parents = S == 1 && parent_rows.empty() ? context_rows : parent_rows;
    // Code S-1 sits in decoder slot S.
    const Tensor x = embed_decoder(Tensor::from_i64(tokens, {N, 1}, device_),
                                   Tensor::from_i64(std::vector<int64_t>(tokens.size(), S), {N, 1}, device_), false,
                                   unused);
    return last_position_log_probs(ln_(blocks_.forward_continued(x, cache, context_rows, parents, config_.heads)), S);
  }
  // The item being generated has recency 0.
  const std::vector<int64_t> positions(tokens.size(), 0);
  TigerBatch newest = make_tiger_batch(vocab_, tokens, positions, {}, N, 1, device_);
  Tensor x = blocks_.forward_continued(embed(newest, false, unused), cache, context_rows, parent_rows, config_.heads);
  return last_position_log_probs(ln_(x), S);
}

std::string describe_tiger_model(TigerModel& model) {
  const TigerConfig& config = model.config();
  std::string sizes;
  for (int64_t v : config.vocab_sizes) sizes += (sizes.empty() ? "" : "+") + std::to_string(v);
  const std::string blocks =
      config.encoder_decoder()
          ? fmt::format("encoder blocks={} decoder blocks={}", config.encoder_blocks, config.blocks)
          : fmt::format("blocks={}", config.blocks);
  return fmt::format("tiger ({}) d={} {} heads={}x{} ff={} history={} items ({} tokens) vocabulary 1+{} dropout={} "
                     "({} parameters) on {}",
                     config.encoder_decoder() ? "encoder-decoder" : "decoder-only", config.d, blocks, config.heads,
                     head_width(config.d, config.heads, config.head_dim), config.ff > 0 ? config.ff : config.d,
                     config.max_items, config.history_window(), sizes, config.dropout, model.parameters().numel(),
                     device_name(model.device()));
}

}  // namespace muonrec
