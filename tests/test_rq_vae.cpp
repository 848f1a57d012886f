// The RQ-VAE semantic-ID tokenizer: it learns codes that reconstruct the item vectors and follow
// their clusters, uses its codebooks, is deterministic by seed, round-trips through checkpoints as
// "rq-vae", refuses bad input; plus the RqKMeans pieces it is built on (residual_quantize,
// from_codebooks).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "muonrec/engine/device.h"
#include "muonrec/engine/rng.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/semantic_id/rq_vae.h"
#include "semantic_id_testkit.h"
#include "test_util.h"

namespace muonrec::semantic_id {
namespace {

using testkit::clustered_data;
using testkit::expect_error;
using testkit::expect_unique_codes;
using testkit::TempDir;

RqVaeOptions small_rq_vae(uint64_t seed = 1) {
  RqVaeOptions o;
  o.hidden = {32};
  o.latent = 8;
  o.levels = 2;
  o.codebook_size = 8;
  o.epochs = 40;
  o.batch = 64;
  o.lr = 3e-3f;
  o.seed = seed;
  return o;
}

// n points around `clusters` well-separated centres in `dim` dimensions; labels[i] is point i's
// centre (row 0, padding, is zeros and labelled -1).
std::vector<float> labelled_clusters(int64_t n, int64_t dim, int64_t clusters, uint64_t seed,
                                     std::vector<int64_t>* labels) {
  PhiloxGenerator gen(seed);
  std::vector<float> centres(static_cast<size_t>(clusters * dim));
  for (float& v : centres) v = 4.0f * gen.normal();
  std::vector<float> x(static_cast<size_t>((n + 1) * dim), 0.0f);
  labels->assign(static_cast<size_t>(n + 1), -1);
  for (int64_t i = 1; i <= n; ++i) {
    (*labels)[i] = i % clusters;
    for (int64_t j = 0; j < dim; ++j) x[i * dim + j] = centres[(*labels)[i] * dim + j] + 0.3f * gen.normal();
  }
  return x;
}

TEST(RqVae, ReconstructsWithEveryCodeInUse) {
  const int64_t n = 400, dim = 16;
  const std::vector<float> x = clustered_data(n, dim, 3);
  std::ostringstream progress;
  RqVaeReport report;
  RqKMeans tokenizer = fit_rq_vae(x.data(), n + 1, dim, small_rq_vae(), Device::CPU, &progress, &report);

  EXPECT_EQ(tokenizer.name(), "rq-vae");
  EXPECT_EQ(tokenizer.levels(), 2);
  EXPECT_EQ(tokenizer.dim(), 8);  // the codebooks quantise the latent
  EXPECT_EQ(tokenizer.n_items(), n);
  expect_unique_codes(tokenizer);
  // Training cuts the reconstruction error far below that of the initial weights and codebooks.
  EXPECT_GT(report.initial_reconstruction, 0.5);
  EXPECT_LT(report.reconstruction, 0.25 * report.initial_reconstruction);
  ASSERT_EQ(report.latent_residual.size(), 2u);
  EXPECT_LT(report.latent_residual[1], report.latent_residual[0]);  // the second level refines the first
  ASSERT_EQ(report.used_codes.size(), 2u);
  for (int64_t used : report.used_codes) EXPECT_GE(used, 6) << "codebook collapsed";
  EXPECT_EQ(report.steps, 40 * 7);  // ceil(400 / 64) steps an epoch
  EXPECT_NE(progress.str().find("rq-vae epoch 40/40"), std::string::npos) << progress.str();
  EXPECT_NE(report.summary().find("reconstruction"), std::string::npos);
}

TEST(RqVae, FirstLevelCodesFollowTheClusters) {
  const int64_t n = 240, dim = 12, clusters = 4;
  std::vector<int64_t> labels;
  const std::vector<float> x = labelled_clusters(n, dim, clusters, 5, &labels);
  RqVaeOptions o = small_rq_vae(2);
  o.codebook_size = clusters;
  RqKMeans tokenizer = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  // Each cluster's items share one first code, and different clusters have different ones.
  std::map<int64_t, std::map<int64_t, int64_t>> codes_by_label;
  for (int64_t i = 1; i <= n; ++i) ++codes_by_label[labels[i]][tokenizer.item_code(i)[0]];
  std::set<int64_t> majority_codes;
  for (auto& [label, counts] : codes_by_label) {
    int64_t best = -1, best_count = 0;
    for (auto& [code, count] : counts)
      if (count > best_count) best = code, best_count = count;
    EXPECT_EQ(best_count, n / clusters) << "cluster " << label << " split over first codes";
    majority_codes.insert(best);
  }
  EXPECT_EQ(majority_codes.size(), static_cast<size_t>(clusters));
}

// Only the codebook term |sg(r_l) - e_l|^2 reaches the codebooks, and beta weighs the commitment term
// alone: after one step from the same start, the codebooks are the same for beta 0 and beta 10, and
// they moved (beta on the codebook term instead would leave them where they started at beta 0).
TEST(RqVae, BetaWeighsTheCommitmentTermAndNotTheCodebookTerm) {
  const int64_t n = 120, dim = 10;
  const std::vector<float> x = clustered_data(n, dim, 9);
  RqVaeOptions o = small_rq_vae(4);
  o.batch = n;  // one step an epoch
  o.epochs = 0;
  const RqKMeans start = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  o.epochs = 1;
  o.beta = 0.0f;
  const RqKMeans no_commitment = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  o.beta = 10.0f;
  const RqKMeans strong_commitment = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  for (int64_t l = 0; l < o.levels; ++l) {
    EXPECT_NE(no_commitment.codebook(l), start.codebook(l)) << "level " << l;
    EXPECT_EQ(no_commitment.codebook(l), strong_commitment.codebook(l)) << "level " << l;
  }
}

TEST(RqVae, DeterministicBySeed) {
  const int64_t n = 150, dim = 10;
  const std::vector<float> x = clustered_data(n, dim, 4);
  RqVaeOptions o = small_rq_vae(7);
  o.epochs = 5;
  const RqKMeans a = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  const RqKMeans b = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  EXPECT_EQ(a.item_codes(), b.item_codes());
  EXPECT_EQ(a.codebook(0), b.codebook(0));
  o.seed = 8;
  const RqKMeans c = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  EXPECT_NE(a.codebook(0), c.codebook(0));
}

TEST(RqVae, CheckpointKeepsCodesAndName) {
  const int64_t n = 100, dim = 8;
  const std::vector<float> x = clustered_data(n, dim, 6);
  RqVaeOptions o = small_rq_vae();
  o.epochs = 3;
  const RqKMeans tokenizer = fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr);
  TempDir dir;
  const std::string path = dir.path("tokenizer.safetensors");
  tokenizer.save(path);
  const RqKMeans loaded = RqKMeans::load(path);
  EXPECT_EQ(loaded.name(), "rq-vae");
  EXPECT_EQ(loaded.metadata().at("semantic_id.tokenizer"), "rq-vae");
  EXPECT_EQ(loaded.item_codes(), tokenizer.item_codes());
  EXPECT_EQ(loaded.vocab_sizes(), tokenizer.vocab_sizes());
  EXPECT_EQ(loaded.codebook(1), tokenizer.codebook(1));
  // Without the header's metadata the tensors still restore the codes (older readers).
  EXPECT_EQ(RqKMeans::from_state_dict(tokenizer.state_dict()).item_codes(), tokenizer.item_codes());
}

TEST(RqVae, BadInput) {
  const int64_t n = 20, dim = 4;
  std::vector<float> x = clustered_data(n, dim, 1);
  auto fit = [&](const RqVaeOptions& o) { fit_rq_vae(x.data(), n + 1, dim, o, Device::CPU, nullptr); };
  RqVaeOptions o = small_rq_vae();
  o.latent = 0;
  expect_error([&] { fit(o); }, {"rq-vae", "latent width must be >= 1, got 0"});
  o = small_rq_vae();
  o.hidden = {16, 0};
  expect_error([&] { fit(o); }, {"hidden widths must be >= 1, got 0"});
  o = small_rq_vae();
  o.lr = 0.0f;
  expect_error([&] { fit(o); }, {"learning rate must be finite and > 0"});
  o = small_rq_vae();
  o.beta = -1.0f;
  expect_error([&] { fit(o); }, {"beta must be finite and >= 0"});
  x[3 * dim + 2] = std::nanf("");
  expect_error([&] { fit(small_rq_vae()); }, {"item 3 feature 2 is not finite"});
  std::vector<float> zeros(static_cast<size_t>((n + 1) * dim), 0.0f);
  expect_error([&] { fit_rq_vae(zeros.data(), n + 1, dim, small_rq_vae(), Device::CPU, nullptr); },
               {"every item vector is zero"});
  expect_error([&] { fit_rq_vae(zeros.data(), 1, dim, small_rq_vae(), Device::CPU, nullptr); },
               {"n_items >= 1, got [1, 4]"});
}

TEST(RqVae, TrainsOnTheGpuLikeOnTheCpu) {
  SKIP_WITHOUT_GPU();
  const int64_t n = 400, dim = 16;
  const std::vector<float> x = clustered_data(n, dim, 3);
  RqVaeReport cpu, gpu;
  fit_rq_vae(x.data(), n + 1, dim, small_rq_vae(), Device::CPU, nullptr, &cpu);
  const RqKMeans tokenizer = fit_rq_vae(x.data(), n + 1, dim, small_rq_vae(), Device::CUDA, nullptr, &gpu);
  expect_unique_codes(tokenizer);
  // Not bit-identical (other summation orders), but as good: the same initial error, a final one as low.
  EXPECT_NEAR(gpu.initial_reconstruction, cpu.initial_reconstruction, 1e-3 * cpu.initial_reconstruction);
  EXPECT_LT(gpu.reconstruction, 0.25 * gpu.initial_reconstruction);
  EXPECT_LT(gpu.reconstruction, 1.5 * cpu.reconstruction);
}

// A restarted entry is an item's residual at its level, where the levels before it count their own
// restarted entries: level 0's entry 1 restarts at one of the points, and level 1's unused entries
// at what is left of an item after the level-0 entry it now takes.
TEST(RqVae, RestartedEntriesAreResidualsOfTheirLevel) {
  const int64_t latent = 2, n = 3;
  // Before the restart every point is nearest level-0 entry 0; after it, every point is nearest the
  // restarted entry 1 (one of them), so the level-1 residuals change with it.
  const std::vector<float> z = {10, 0, 10, 1, 11, 0};
  std::vector<std::vector<float>> codebooks = {{-20, -20, 100, 100}, {0, 0, 40, 40}};
  const std::vector<std::vector<bool>> used = {{true, false}, {true, false}};
  PhiloxGenerator gen(3);
  EXPECT_EQ(restart_unused_entries(codebooks, 2, z, n, latent, used, gen), 2);
  EXPECT_EQ(codebooks[0][0], -20.0f);  // used entries stay
  EXPECT_EQ(codebooks[0][1], -20.0f);
  const std::vector<float> e = {codebooks[0][2], codebooks[0][3]};
  int64_t source = -1;
  for (int64_t i = 0; i < n; ++i)
    if (z[i * latent] == e[0] && z[i * latent + 1] == e[1]) source = i;
  ASSERT_GE(source, 0) << "level-0 entry 1 is no point: " << e[0] << ", " << e[1];
  // Level 1: some item's z minus its nearest level-0 entry after the restart.
  std::vector<std::vector<float>> level1_residuals;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<int64_t> code = residual_quantize(z.data() + i * latent, 1, latent, {codebooks[0]}, 2);
    level1_residuals.push_back(
        {z[i * latent] - codebooks[0][code[0] * latent], z[i * latent + 1] - codebooks[0][code[0] * latent + 1]});
  }
  const std::vector<float> restarted = {codebooks[1][2], codebooks[1][3]};
  EXPECT_NE(std::find(level1_residuals.begin(), level1_residuals.end(), restarted), level1_residuals.end())
      << restarted[0] << ", " << restarted[1];
  EXPECT_EQ(codebooks[1][0], 0.0f);
}

TEST(RqKMeans, ResidualQuantizeIsEncode) {
  const int64_t n = 120, dim = 6;
  const std::vector<float> x = clustered_data(n, dim, 9);
  RqKMeansOptions o;
  o.levels = 3;
  o.codebook_size = 5;
  o.seed = 2;
  RqKMeans rq(o);
  rq.fit(x, dim);
  std::vector<std::vector<float>> codebooks = {rq.codebook(0), rq.codebook(1), rq.codebook(2)};
  const std::vector<int64_t> codes = residual_quantize(x.data() + dim, n, dim, codebooks, 5);
  EXPECT_EQ(codes, rq.encode(x.data() + dim, n));
  // Level by level by hand for one point: the nearest entry to what the levels before left.
  std::vector<float> residual(x.begin() + 7 * dim, x.begin() + 8 * dim);
  for (int64_t l = 0; l < 3; ++l) {
    int64_t best = -1;
    double best_distance = 1e300;
    for (int64_t c = 0; c < 5; ++c) {
      double d = 0.0;
      for (int64_t j = 0; j < dim; ++j) d += std::pow(residual[j] - codebooks[l][c * dim + j], 2);
      if (d < best_distance) best_distance = d, best = c;
    }
    EXPECT_EQ(codes[6 * 3 + l], best) << "level " << l;
    for (int64_t j = 0; j < dim; ++j) residual[j] -= codebooks[l][best * dim + j];
  }
}

TEST(RqKMeans, FromCodebooksAppendsDisambiguationAndChecks) {
  RqKMeansOptions o;
  o.levels = 2;
  o.codebook_size = 3;
  const std::vector<std::vector<float>> codebooks = {std::vector<float>(6, 1.0f), std::vector<float>(6, 2.0f)};
  // Items 1 and 3 share (2, 1); row 0 is ignored.
  const std::vector<int64_t> codes = {9, 9, 2, 1, 0, 0, 2, 1};
  const RqKMeans rq = RqKMeans::from_codebooks(o, 2, codebooks, codes, "custom");
  EXPECT_EQ(rq.name(), "custom");
  EXPECT_EQ(rq.item_code(1), (std::vector<int64_t>{2, 1, 0}));
  EXPECT_EQ(rq.item_code(2), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(rq.item_code(3), (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(rq.vocab_sizes(), (std::vector<int64_t>{3, 3, 2}));
  EXPECT_EQ(rq.report().colliding_items, 2);
  EXPECT_EQ(rq.report().unique_prefixes, 2);
  expect_error([&] { RqKMeans::from_codebooks(o, 2, {codebooks[0]}, codes, "x"); },
               {"1 codebooks of width 2 for 2 levels"});
  expect_error([&] { RqKMeans::from_codebooks(o, 3, codebooks, codes, "x"); },
               {"a codebook of 6 values, expected 3 x 3"});
  expect_error([&] { RqKMeans::from_codebooks(o, 2, codebooks, {0, 0, 1, 3}, "x"); },
               {"item 1 level 1 code 3 outside [0, 3)"});
  // Refit, the tokenizer is RQ-KMeans's, and its saved metadata says so.
  RqKMeans refit = rq;
  refit.fit({0, 0, 5, 6, 7, 8, 1, 2, 3, 3}, 2);
  EXPECT_EQ(refit.name(), "rq-kmeans");
  EXPECT_EQ(refit.metadata().at("semantic_id.tokenizer"), "rq-kmeans");
}

}  // namespace
}  // namespace muonrec::semantic_id
