// Training a TIGER model (models/tiger.h). Each epoch visits every training example once: for the
// decoder-only model one token window per user from the user's training part
// (fill_training_window); for the encoder-decoder one example per item of that part after the
// first (the items before it, as a generation window, and its tokens as the decoder's targets).
// Examples are shuffled by data::epoch_permutation (a pure function of seed and epoch) and grouped
// into batches of similar history length, AdamW and/or Muon through
// OptimizerSet, the same progress lines and JSONL records as the sequential trainer, validation by
// constrained beam search every eval_every epochs, and the test metrics of the best validation
// epoch (its parameters are kept in memory and restored for the test). Each batch is cut to its
// longest window, so short histories cost less; shapes vary from batch to batch. As the sequential
// trainer: --save-last writes the whole training state after every epoch (with the best epoch's
// parameters), --resume continues from it bit for bit, and a run stopped by stop_after_epoch
// skips the test, which the resumed run does.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>

#include "muonrec/data/dataset.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/tiger.h"
#include "muonrec/models/tiger_generate.h"
#include "muonrec/models/trainer.h"

namespace muonrec {

struct TigerTrainOptions {
  // epochs, batch_size (examples per step), optimizer, seed, max_grad_norm, eval_every,
  // progress_seconds, eval.filter_seen, metrics_path, checkpoint_path, last_checkpoint_path,
  // resume_path, stop_after_epoch.
  TrainOptions train;
  TigerGenerateOptions generate;
  int64_t valid_users = 0;  // validate on a fixed random sample of this many users (0: all)
  int64_t test_users = 0;   // same for the final test (0: all)
};

// tokenizer: saved into the checkpoints with the model (required when a checkpoint path is given).
// When resuming, the catalog must be the one of the state's tokenizer (run_tiger_pipeline loads it).
TrainResult train_tiger(TigerModel& model, const TigerCatalog& catalog, const data::SequenceDataset& dataset,
                        const TigerTrainOptions& options, std::ostream& log,
                        const semantic_id::RqKMeans* tokenizer = nullptr);

// A TIGER checkpoint: the model's parameters ("param.*"), the tokenizer's state_dict
// ("semantic_id.*"), and in the metadata the model config (kind "tiger"), the tokenizer's facts and
// `metadata`; a training state adds the optimizer's and the best parameters' tensors.
void save_tiger_checkpoint(const std::string& path, TigerModel& model, const semantic_id::RqKMeans& tokenizer,
                           const std::map<std::string, std::string>& metadata,
                           const std::map<std::string, Tensor>& training_state = {});
bool is_tiger_checkpoint(const SafetensorsFile& file);
// The beam width a tiger checkpoint was tested with, or `fallback` when it does not say.
int64_t trained_beam_width(const SafetensorsFile& file, int64_t fallback);

struct TigerBundle {
  std::unique_ptr<TigerModel> model;
  semantic_id::RqKMeans tokenizer;
  TigerCatalog catalog;
};
TigerBundle load_tiger_checkpoint(const SafetensorsFile& file, Device device);
TigerBundle load_tiger_checkpoint(const std::string& path, Device device);

}  // namespace muonrec
