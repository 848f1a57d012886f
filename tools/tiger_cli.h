// The `muonrec train --model tiger` flags and runners (semantic-ID generative retrieval), kept
// beside main.cpp so the shared command line only gains one registration call and two branches.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "muonrec/data/dataset.h"
#include "muonrec/engine/device.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/tiger_pipeline.h"
#include "muonrec/models/trainer.h"
#include "muonrec/tools/cli_checks.h"

namespace muonrec {

// The flags that shape a TIGER model and its codes, on train and bench: --sid-levels,
// --sid-codebook, --sid-history, --encoder-blocks. Returns them.
std::vector<const CLI::Option*> add_tiger_shape_flags(CLI::App* cmd, semantic_id::RqKMeansOptions& codes,
                                                      TigerConfig& model);
// A TIGER model's config: the shared model flags (--d, --blocks, --heads, --head-dim, --ff,
// --dropout) over `shape` (its history, encoder blocks and vocabularies).
TigerConfig tiger_config(const ModelConfig& flags, TigerConfig shape);

struct TigerCliArgs {
  TigerPipelineOptions pipeline;  // the tokenizer, item-vector and generation flags land here
  std::vector<const CLI::Option*> options;  // those flags, which only --model tiger reads
  std::vector<const CLI::Option*> text_options;  // --item-text, --movies, --movie-map: text item vectors only
  std::vector<const CLI::Option*> cooccurrence_options;  // --cooc-window: co-occurrence item vectors only
  std::vector<const CLI::Option*> rq_vae_options;  // --rqvae-*: --sid-tokenizer rq-vae only
  const CLI::Option* balanced = nullptr;  // --sid-balanced / --sid-unbalanced: RQ-KMeans only
  std::string rq_vae_hidden = "512,256,128";  // --rqvae-hidden, parsed into pipeline.rq_vae.hidden
  CLI::Option* from_checkpoint = nullptr;  // --item-vectors-from-checkpoint
  std::vector<CLI::Option*> replaced_by_checkpoint;  // the item-vector flags it excludes
  // Registers --sid-*, --rqvae-*, --beam, --beam-users, --item-text, --movies, --movie-map, --cooc-window,
  // --item-vectors-from-checkpoint, --valid-users and --test-users on the train command.
  void add_to(CLI::App* train_cmd);
  // Resolves --item-vectors-from-checkpoint against the flags it excludes (CommandLine::
  // resolve_excluding) and refuses the item-text flags with co-occurrence item vectors (before any
  // data is read); the --rqvae-* flags need --sid-tokenizer rq-vae, which refuses --sid-balanced.
  void resolve_flags(CommandLine& typed);
};

// Runs the pipeline with the shared model flags (--d, --blocks, --heads, --ff, --dropout) and
// training flags (epochs, batch, optimizer, seed, eval interval, metrics, checkpoint).
int run_train_tiger(const data::SequenceDataset& dataset, const ModelConfig& model, const TrainOptions& train,
                    TigerCliArgs args, Device device, bool show_baseline);

// `muonrec eval` of a tiger checkpoint (read once, by the caller): beam search with `beam_width` beams, or (0) with the width
// it was trained with. A wider beam searches more of the code space for the same model.
// users_per_chunk: users decoded together (0: TigerGenerateOptions' default).
// ranks_path: where to write the per-user ranks (models/rank_comparison.h), or empty.
int run_eval_tiger(const SafetensorsFile& checkpoint, const data::SequenceDataset& dataset, data::EvalSplit split,
                   const EvalOptions& eval, int64_t beam_width, int64_t users_per_chunk, Device device,
                   const std::string& ranks_path);

}  // namespace muonrec
