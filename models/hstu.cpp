#include "muonrec/models/hstu.h"

#include <algorithm>
#include <cmath>

#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/ops.h"

namespace muonrec {
namespace {

constexpr float kNormEps = 1e-6f;  // layer norms and L2 normalisations

}  // namespace


HSTU::HSTU(const ModelConfig& config, Device device, uint64_t seed) : SequentialModel(config, device) {
  MUONREC_CHECK(config.n_items > 0 && config.d > 0 && config.max_len > 0 && config.blocks >= 0,
                "hstu: n_items, d and max_len must be positive");
  MUONREC_CHECK(config.heads > 0 && config.d % config.heads == 0, "hstu: d={} is not divisible by heads={}", config.d,
                config.heads);
  // HSTU's U, V, Q, K all split d among the heads (reference/MODELS.md); it has no separate head width.
  MUONREC_CHECK(config.head_dim == 0 || config.head_dim * config.heads == config.d,
                "hstu: head_dim {} x heads {} must equal d={} (HSTU's heads split d; leave head_dim 0)",
                config.head_dim, config.heads, config.d);
  PhiloxGenerator gen(seed);
  const int64_t d = config.d, T = config.max_len;
  // Item row 0 is padding: zero, as torch's padding_idx leaves it.
  Tensor item = init_normal({config.item_table_rows(), d}, 0.02f, gen, Device::CPU);
  std::fill(item.data<float>(), item.data<float>() + d, 0.0f);
  item_ = params_.add("item.weight", item.to(device), /*embedding=*/true);
  pos_ = params_.add("pos.weight", init_normal({T, d}, 0.02f, gen, device), /*embedding=*/true);
  // Registration follows torch's named_parameters: a block's own parameters, then its submodules.
  const float xavier_bound = std::sqrt(6.0f / static_cast<float>(2 * d));
  const float default_bias_bound = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t b = 0; b < config.blocks; ++b) {
    const std::string prefix = "blocks." + std::to_string(b) + ".";
    Block block;
    block.pos_bias = params_.add(prefix + "pos_bias", init_constant({2 * T - 1}, 0.0f, device));
    block.time_bias = params_.add(prefix + "time_bias", init_constant({kHstuTimeBuckets}, 0.0f, device));
    block.uvqk.weight = params_.add(prefix + "uvqk.weight", init_normal({4 * d, d}, 0.02f, gen, device));
    block.out.weight = params_.add(prefix + "out.weight", init_uniform({d, d}, xavier_bound, gen, device));
    block.out.bias = params_.add(prefix + "out.bias", init_uniform({d}, default_bias_bound, gen, device));
    blocks_.push_back(block);
  }
}

Tensor HSTU::hidden(const SequenceBatch& batch, bool training, PhiloxGenerator& gen) {
  NVTX_RANGE("hstu.hidden");
  const int64_t T = batch.ids.dim(1), d = config_.d;
  MUONREC_CHECK(T <= config_.max_len, "hstu: window {} exceeds max_len {}", T, config_.max_len);
  const float p = config_.dropout;
  Tensor buckets;
  if (batch.timestamps.defined()) {
    // Bucketed on the host in double (as the peer) once per batch, shared by every block.
    buckets = ops::hstu_time_buckets(batch.timestamps);
  }
  Tensor x = ops::scale(ops::embedding(item_, batch.ids), std::sqrt(static_cast<float>(d)));
  x = ops::add(x, pos_.narrow_rows(0, T));
  x = ops::scale_rows(ops::dropout(x, p, gen, training), batch.valid);
  for (const Block& block : blocks_) {
    NVTX_RANGE("hstu.block");
    // Offsets j - i of a shorter window keep their parameters: offset 0 is entry max_len - 1.
    Tensor pos_bias = block.pos_bias.narrow_rows(config_.max_len - T, 2 * T - 1);
    Tensor uvqk = ops::silu(block.uvqk(ops::layer_norm(x, Tensor(), Tensor(), kNormEps)));
    Tensor y = ops::hstu_attention(uvqk, batch.valid, pos_bias, buckets.defined() ? block.time_bias : Tensor(),
                                   buckets, static_cast<int>(config_.heads));
    Tensor gated = ops::mul(ops::split_last(uvqk, 0, d), ops::layer_norm(y, Tensor(), Tensor(), kNormEps));
    x = ops::add(x, block.out(ops::dropout(gated, p, gen, training)));
  }
  return ops::l2_normalize(x, kNormEps);
}

Tensor HSTU::scoring_matrix() {
  // The temperature scales the [n_items, d] item side rather than the [N, n_items] scores: the same
  // product up to rounding, at a fraction of the memory traffic.
  Tensor items = ops::l2_normalize(item_.narrow_rows(1, config_.n_items), kNormEps);
  return ops::scale(items, 1.0f / kScoreTemperature);
}

}  // namespace muonrec
