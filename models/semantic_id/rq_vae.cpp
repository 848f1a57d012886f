#include "muonrec/models/semantic_id/rq_vae.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <ostream>

#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/ops.h"
#include "muonrec/engine/rng.h"
#include "muonrec/models/module.h"
#include "muonrec/optim/adamw.h"

namespace muonrec::semantic_id {
namespace {

// Linear layers with ReLU between them (none after the last).
struct Mlp {
  std::vector<Linear> layers;
  Mlp() = default;
  Mlp(ParameterList& params, const std::string& name, const std::vector<int64_t>& widths, PhiloxGenerator& gen,
      Device device) {
    for (size_t i = 0; i + 1 < widths.size(); ++i)
      layers.emplace_back(params, fmt::format("{}.{}", name, i), widths[i], widths[i + 1], true, gen, device);
  }
  Tensor operator()(Tensor x) const {
    for (size_t i = 0; i < layers.size(); ++i) {
      x = layers[i](x);
      if (i + 1 < layers.size()) x = ops::relu(x);
    }
    return x;
  }
};

// |a_i|^2 summed over features, averaged over the rows i.
Tensor mean_squared_norm(const Tensor& a) { return ops::scale(ops::sum(ops::mul(a, a)), 1.0f / a.dim(0)); }

Tensor difference(const Tensor& a, const Tensor& b) { return ops::add(a, ops::scale(b, -1.0f)); }

class RqVae {
 public:
  RqVae(int64_t dim, const RqVaeOptions& o, Device device) : options_(o), device_(device), gen_(o.seed) {
    std::vector<int64_t> widths = {dim};
    widths.insert(widths.end(), o.hidden.begin(), o.hidden.end());
    widths.push_back(o.latent);
    encoder_ = Mlp(params_, "encoder", widths, gen_, device);
    std::reverse(widths.begin(), widths.end());
    decoder_ = Mlp(params_, "decoder", widths, gen_, device);
    for (int64_t l = 0; l < o.levels; ++l)
      codebooks_.push_back(
          params_.add(fmt::format("codebook.{}", l), Tensor::zeros({o.codebook_size, o.latent}, DType::F32, device),
                      /*embedding=*/true));
  }

  const std::vector<NamedParameter>& parameters() const { return params_.all(); }
  void zero_grad() { params_.zero_grad(); }

  // Latents of rows x [n, dim] (host), in chunks of a batch, without gradients.
  std::vector<float> encode(const std::vector<float>& x, int64_t n, int64_t dim) const {
    NoGradGuard no_grad;
    std::vector<float> z;
    z.reserve(static_cast<size_t>(n * options_.latent));
    for (int64_t start = 0; start < n; start += options_.batch) {
      const int64_t count = std::min(options_.batch, n - start);
      std::vector<float> rows(x.begin() + start * dim, x.begin() + (start + count) * dim);
      std::vector<float> part = encoder_(Tensor::from_f32(rows, {count, dim}, device_)).to_f32_vector();
      z.insert(z.end(), part.begin(), part.end());
    }
    return z;
  }

  std::vector<std::vector<float>> codebooks() const {
    std::vector<std::vector<float>> out;
    for (const Tensor& c : codebooks_) out.push_back(c.to_f32_vector());
    return out;
  }

  void set_codebooks(const RqKMeans& kmeans) {
    for (int64_t l = 0; l < options_.levels; ++l)
      codebooks_[l].copy_from(Tensor::from_f32(kmeans.codebook(l), {options_.codebook_size, options_.latent}));
  }

  // Restarts the entries no item took in the epoch (restart_unused_entries); returns how many.
  int64_t restart_unused(const std::vector<float>& z, int64_t n, const std::vector<std::vector<bool>>& used,
                         PhiloxGenerator& gen) {
    std::vector<std::vector<float>> tables = codebooks();
    const int64_t restarted =
        restart_unused_entries(tables, options_.codebook_size, z, n, options_.latent, used, gen);
    if (restarted > 0)
      for (int64_t l = 0; l < options_.levels; ++l)
        codebooks_[l].copy_from(Tensor::from_f32(tables[l], {options_.codebook_size, options_.latent}));
    return restarted;
  }

  // Mean |x - decoder(q)|^2 of rows x [n, dim] (host) quantised by the codebooks' entries `codes`
  // [n, levels].
  double reconstruction_error(const std::vector<float>& x, int64_t n, int64_t dim,
                              const std::vector<int64_t>& codes) const {
    NoGradGuard no_grad;
    const int64_t latent = options_.latent, levels = options_.levels;
    const std::vector<std::vector<float>> tables = codebooks();
    double total = 0.0;
    for (int64_t start = 0; start < n; start += options_.batch) {
      const int64_t count = std::min(options_.batch, n - start);
      std::vector<float> q(static_cast<size_t>(count * latent), 0.0f);
      for (int64_t i = 0; i < count; ++i)
        for (int64_t l = 0; l < levels; ++l) {
          const float* entry = tables[l].data() + codes[(start + i) * levels + l] * latent;
          for (int64_t j = 0; j < latent; ++j) q[i * latent + j] += entry[j];
        }
      std::vector<float> rows(x.begin() + start * dim, x.begin() + (start + count) * dim);
      Tensor error = difference(decoder_(Tensor::from_f32(q, {count, options_.latent}, device_)),
                                Tensor::from_f32(rows, {count, dim}, device_));
      total += ops::sum(ops::mul(error, error)).item();
    }
    return total / static_cast<double>(n);
  }

  // The training loss of rows x [count, dim] (host). Also gives the reconstruction part and marks
  // the codes the rows took in used[level][code].
  Tensor loss(const std::vector<float>& rows, int64_t count, int64_t dim, Tensor* reconstruction,
              std::vector<std::vector<bool>>& used) const {
    const int64_t latent = options_.latent, levels = options_.levels;
    Tensor x = Tensor::from_f32(rows, {count, dim}, device_);
    Tensor z = encoder_(x);
    const std::vector<float> z_host = z.to_f32_vector();
    const std::vector<std::vector<float>> tables = codebooks();
    const std::vector<int64_t> codes = residual_quantize(z_host.data(), count, latent, tables, options_.codebook_size);
    std::vector<float> residual = z_host, quantized(z_host.size(), 0.0f), chosen(z_host.size());
    std::vector<int64_t> ids(static_cast<size_t>(count));
    Tensor r = z, quantization;
    for (int64_t l = 0; l < levels; ++l) {
      for (int64_t i = 0; i < count; ++i) {
        ids[i] = codes[i * levels + l];
        used[l][ids[i]] = true;
        std::copy_n(tables[l].begin() + ids[i] * latent, latent, chosen.begin() + i * latent);
      }
      Tensor e = ops::embedding(codebooks_[l], Tensor::from_i64(ids, {count}, device_));
      Tensor codebook_term = mean_squared_norm(difference(Tensor::from_f32(residual, {count, latent}, device_), e));
      r = difference(r, Tensor::from_f32(chosen, {count, latent}, device_));  // r_{l+1} = r_l - sg(e_l)
      Tensor term = ops::add(codebook_term, ops::scale(mean_squared_norm(r), options_.beta));
      quantization = quantization.defined() ? ops::add(quantization, term) : term;
      for (size_t j = 0; j < residual.size(); ++j) {
        residual[j] -= chosen[j];
        quantized[j] += chosen[j];
      }
    }
    std::vector<float> offset(z_host.size());  // q - z, a constant: the decoder's gradient passes to z
    for (size_t j = 0; j < offset.size(); ++j) offset[j] = quantized[j] - z_host[j];
    Tensor decoded = decoder_(ops::add(z, Tensor::from_f32(offset, {count, latent}, device_)));
    *reconstruction = mean_squared_norm(difference(decoded, x));
    return ops::add(*reconstruction, quantization);
  }

 private:
  RqVaeOptions options_;
  Device device_;
  PhiloxGenerator gen_;
  ParameterList params_;
  Mlp encoder_, decoder_;
  std::vector<Tensor> codebooks_;
};

// Item rows 1..n of `vectors`, scaled so that their mean squared feature is 1.
std::vector<float> standardised_items(const float* vectors, int64_t n_rows, int64_t dim) {
  std::vector<float> x(vectors + dim, vectors + n_rows * dim);
  double total = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    MUONREC_CHECK(std::isfinite(x[i]), "rq-vae: item {} feature {} is not finite ({})", i / dim + 1, i % dim, x[i]);
    total += static_cast<double>(x[i]) * x[i];
  }
  MUONREC_CHECK(total > 0.0, "rq-vae: every item vector is zero");
  const float factor = static_cast<float>(std::sqrt(static_cast<double>(x.size()) / total));
  for (float& v : x) v *= factor;
  return x;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int64_t restart_unused_entries(std::vector<std::vector<float>>& codebooks, int64_t codebook_size,
                               const std::vector<float>& z, int64_t n, int64_t latent,
                               const std::vector<std::vector<bool>>& used, PhiloxGenerator& gen) {
  MUONREC_CHECK(n >= 1 && static_cast<int64_t>(z.size()) == n * latent && used.size() == codebooks.size(),
                "restart_unused_entries: {} latents of width {} for {} items, {} levels of use for {} codebooks",
                z.size(), latent, n, used.size(), codebooks.size());
  std::vector<float> residual = z;
  int64_t restarted = 0;
  for (size_t l = 0; l < codebooks.size(); ++l) {
    std::vector<float>& table = codebooks[l];
    for (int64_t c = 0; c < codebook_size; ++c) {
      if (used[l][c]) continue;
      const int64_t item = static_cast<int64_t>(gen.uniform_u64() % static_cast<uint64_t>(n));
      std::copy_n(residual.begin() + item * latent, latent, table.begin() + c * latent);
      ++restarted;
    }
    const std::vector<int64_t> codes = residual_quantize(residual.data(), n, latent, {table}, codebook_size);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < latent; ++j) residual[i * latent + j] -= table[codes[i] * latent + j];
  }
  return restarted;
}

void RqVaeOptions::check() const {
  MUONREC_CHECK(latent >= 1, "rq-vae: latent width must be >= 1, got {}", latent);
  for (int64_t h : hidden) MUONREC_CHECK(h >= 1, "rq-vae: hidden widths must be >= 1, got {}", h);
  MUONREC_CHECK(levels >= 1, "rq-vae: levels must be >= 1, got {}", levels);
  MUONREC_CHECK(codebook_size >= 1, "rq-vae: codebook size must be >= 1, got {}", codebook_size);
  MUONREC_CHECK(beta >= 0 && std::isfinite(beta), "rq-vae: beta must be finite and >= 0, got {}", beta);
  MUONREC_CHECK(epochs >= 0, "rq-vae: epochs must be >= 0, got {}", epochs);
  MUONREC_CHECK(batch >= 1, "rq-vae: batch must be >= 1, got {}", batch);
  MUONREC_CHECK(lr > 0 && std::isfinite(lr), "rq-vae: learning rate must be finite and > 0, got {}", lr);
  MUONREC_CHECK(kmeans_iterations >= 0, "rq-vae: k-means iterations must be >= 0, got {}", kmeans_iterations);
}

std::string RqVaeReport::summary() const {
  std::string s = fmt::format("rq-vae: reconstruction {:.4g} of |x|^2 (initially {:.4g}); latent residual",
                              reconstruction, initial_reconstruction);
  for (size_t l = 0; l < latent_residual.size(); ++l)
    s += fmt::format(" L{} {:.4g} ({} used)", l, latent_residual[l], used_codes[l]);
  return s + fmt::format(" of |z|^2; {} steps, {:.1f} s", steps, seconds);
}

RqKMeans fit_rq_vae(const float* vectors, int64_t n_rows, int64_t dim, const RqVaeOptions& options, Device device,
                    std::ostream* progress, RqVaeReport* report) {
  options.check();
  MUONREC_CHECK(dim >= 1 && n_rows >= 2, "rq-vae: need rows [n_items + 1, dim] with n_items >= 1, got [{}, {}]",
                n_rows, dim);
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = n_rows - 1, latent = options.latent, levels = options.levels;
  const std::vector<float> x = standardised_items(vectors, n_rows, dim);
  double x_norm = 0.0;
  for (float v : x) x_norm += static_cast<double>(v) * v;
  x_norm /= static_cast<double>(n);

  RqVae model(dim, options, device);
  RqKMeansOptions kmeans_options;
  kmeans_options.levels = levels;
  kmeans_options.codebook_size = options.codebook_size;
  kmeans_options.iterations = options.kmeans_iterations;
  kmeans_options.seed = options.seed;
  // Residual codes [n, levels] of latents [n, latent] by the model's codebooks.
  auto codes_of = [&](const std::vector<float>& z) {
    return residual_quantize(z.data(), n, latent, model.codebooks(), options.codebook_size);
  };
  {
    std::vector<float> rows(static_cast<size_t>(latent), 0.0f);  // row 0: padding, as fit() reads rows
    const std::vector<float> z = model.encode(x, n, dim);
    rows.insert(rows.end(), z.begin(), z.end());
    RqKMeans kmeans(kmeans_options);
    kmeans.fit(rows, latent);
    model.set_codebooks(kmeans);
  }
  RqVaeReport r;
  r.initial_reconstruction = model.reconstruction_error(x, n, dim, codes_of(model.encode(x, n, dim))) / x_norm;

  AdamWOptions adamw;
  adamw.lr = options.lr;
  adamw.beta2 = 0.999f;  // torch's default: the tokenizer is no sequential recommender
  AdamW optimizer(model.parameters(), adamw);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::vector<float> rows;
  const int64_t report_every = std::max<int64_t>(1, options.epochs / 10);
  PhiloxGenerator restart_gen(options.seed ^ 0x7265737461727473ULL);
  int64_t restarted = 0;
  for (int64_t epoch = 1; epoch <= options.epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0);
    PhiloxGenerator shuffle(options.seed ^ 0x5271564145ULL, static_cast<uint64_t>(epoch) << 32);
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(order[i], order[shuffle.uniform_u64() % static_cast<uint64_t>(i + 1)]);
    double loss_sum = 0.0, reconstruction_sum = 0.0;
    std::vector<std::vector<bool>> used(levels, std::vector<bool>(options.codebook_size, false));
    for (int64_t first = 0; first < n; first += options.batch) {
      const int64_t count = std::min(options.batch, n - first);
      rows.resize(static_cast<size_t>(count * dim));
      for (int64_t i = 0; i < count; ++i)
        std::copy_n(x.begin() + order[first + i] * dim, dim, rows.begin() + i * dim);
      Tensor reconstruction;
      Tensor loss = model.loss(rows, count, dim, &reconstruction, used);
      model.zero_grad();
      backward(loss);
      optimizer.step();
      loss_sum += loss.item() * count;
      reconstruction_sum += reconstruction.item() * count;
      ++r.steps;
    }
    // Not after the last epoch: the final codes use only entries the decoder was trained with.
    if (epoch < options.epochs) restarted += model.restart_unused(model.encode(x, n, dim), n, used, restart_gen);
    if (progress && (epoch % report_every == 0 || epoch == options.epochs)) {
      std::string codes_used;
      for (const std::vector<bool>& level : used)
        codes_used += fmt::format("{}{}", codes_used.empty() ? "" : "/", std::count(level.begin(), level.end(), true));
      *progress << fmt::format("rq-vae epoch {}/{}: loss {:.4g} (reconstruction {:.4g} of |x|^2), codes used {} "
                               "({} restarted so far), {:.1f} s\n",
                               epoch, options.epochs, loss_sum / n, reconstruction_sum / n / x_norm, codes_used,
                               restarted, seconds_since(start))
                << std::flush;
    }
  }

  const std::vector<float> z = model.encode(x, n, dim);
  const std::vector<int64_t> codes = codes_of(z);
  r.reconstruction = model.reconstruction_error(x, n, dim, codes) / x_norm;
  std::vector<int64_t> item_codes(static_cast<size_t>(levels), 0);  // row 0: padding, ignored
  item_codes.insert(item_codes.end(), codes.begin(), codes.end());
  RqKMeans tokenizer = RqKMeans::from_codebooks(kmeans_options, latent, model.codebooks(), item_codes, "rq-vae");
  double z_norm = 0.0;
  for (float v : z) z_norm += static_cast<double>(v) * v;
  std::vector<float> residual = z;
  for (int64_t l = 0; l < levels; ++l) {
    std::vector<bool> used(static_cast<size_t>(options.codebook_size), false);
    const std::vector<float>& table = tokenizer.codebook(l);
    double remaining = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = codes[i * levels + l];
      used[c] = true;
      for (int64_t j = 0; j < latent; ++j) {
        float& v = residual[i * latent + j];
        v -= table[c * latent + j];
        remaining += static_cast<double>(v) * v;
      }
    }
    r.latent_residual.push_back(z_norm > 0 ? remaining / z_norm : 0.0);
    r.used_codes.push_back(std::count(used.begin(), used.end(), true));
  }
  r.seconds = seconds_since(start);
  if (report) *report = r;
  return tokenizer;
}

}  // namespace muonrec::semantic_id
