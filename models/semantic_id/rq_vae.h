// RQ-VAE (Zeghidour et al. 2021), the semantic-ID tokenizer of the TIGER paper (Rajput et al. 2023):
// an MLP encoder maps an item vector x to a latent z; `levels` codebooks quantise z residually (level
// l takes the entry e_l nearest to r_l = z - e_0 - ... - e_{l-1}); an MLP decoder mirrors the encoder
// and reconstructs x from q = e_0 + ... + e_{levels-1}. Trained end to end on
//   |x - decoder(z + sg(q - z))|^2 + sum_l ( |sg(r_l) - e_l|^2 + beta |r_l - sg(e_l)|^2 )
// (sg: stop-gradient; the straight-through estimator carries the decoder's gradient to the encoder,
// the second term moves the codebooks, the third commits the encoder to them), squared norms summed
// over features and averaged over items, with AdamW. The codebooks start as RQ-KMeans of the initial
// latents (the paper's k-means initialisation, against codebooks that collapse to a few entries).
//
// Entries no item took in an epoch restart at random items' residuals (restart_unused_entries), except
// after the last epoch, so the final codes use only entries the decoder was trained with.
// The inputs are scaled by one factor so that their mean squared feature is 1 (the MLP's initial
// weights assume unit-scale inputs; TF-IDF and co-occurrence rows are unit vectors, features ~1/sqrt(dim)).
// After training, every item's codes are the residual codes of its trained latent; the result is an
// RqKMeans over the latent codebooks, so the disambiguation token, checkpoints and the TIGER model
// treat both tokenizers alike.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "muonrec/engine/device.h"
#include "muonrec/engine/rng.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"

namespace muonrec::semantic_id {

struct RqVaeOptions {
  std::vector<int64_t> hidden = {512, 256, 128};  // encoder layer widths (ReLU between); the decoder mirrors them
  int64_t latent = 32;
  int64_t levels = 3;
  int64_t codebook_size = 256;
  float beta = 0.25f;  // commitment weight
  int64_t epochs = 100;
  int64_t batch = 1024;
  float lr = 1e-3f;
  int64_t kmeans_iterations = 25;  // Lloyd iterations per level of the codebooks' initialisation
  uint64_t seed = 0;
  void check() const;  // throws naming the first invalid field
};

struct RqVaeReport {
  double reconstruction = 0.0;            // mean |x - decoder(q)|^2 / mean |x|^2 after training
  double initial_reconstruction = 0.0;    // the same with the initial weights and codebooks
  std::vector<double> latent_residual;    // per level: mean |r_{l+1}|^2 / mean |z|^2 after training
  std::vector<int64_t> used_codes;        // per level: codebook entries some item takes
  int64_t steps = 0;
  double seconds = 0.0;
  std::string summary() const;
};

// vectors: [n_rows, dim] row-major, row 0 (padding) ignored, as RqKMeans::fit. Trains on `device`
// and writes a progress line about every tenth of the epochs to `progress` (when not null).
RqKMeans fit_rq_vae(const float* vectors, int64_t n_rows, int64_t dim, const RqVaeOptions& options, Device device,
                    std::ostream* progress, RqVaeReport* report = nullptr);

// Codebook entries no item took in an epoch (used[level][code] false) restart as the residuals of
// items drawn at random from `gen`, so every entry is near some latent again (the encoder moves
// faster than an unused entry, which no gradient reaches). Level by level: a level's residuals are
// z minus the nearest entries of the levels before it, restarted ones included. codebooks:
// [levels][codebook_size * latent], changed in place; z: [n, latent]. Returns how many restarted.
int64_t restart_unused_entries(std::vector<std::vector<float>>& codebooks, int64_t codebook_size,
                               const std::vector<float>& z, int64_t n, int64_t latent,
                               const std::vector<std::vector<bool>>& used, PhiloxGenerator& gen);

}  // namespace muonrec::semantic_id
