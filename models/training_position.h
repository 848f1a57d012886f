// Where a training run stands between epochs: everything a resumed run needs besides the tensors
// (parameters, optimizer state), kept in a --save-last file's metadata. Shared by the sequential
// trainer and TIGER's.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>

#include "muonrec/data/dataset.h"
#include "muonrec/engine/device.h"
#include "muonrec/engine/rng.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/models/evaluate.h"
#include "muonrec/models/module.h"
#include "muonrec/models/trainer.h"

namespace muonrec {

struct TrainingPosition {
  int64_t epoch = 0;            // the last finished epoch
  uint64_t dropout_offset = 0;  // the dropout generator's offset after it
  double best_valid = -1.0;     // best validation NDCG@10 so far
  int64_t best_epoch = 0;
  int64_t validations_since_best = 0;  // validations after the best one (what --patience counts)
  int64_t validated_epoch = 0;         // the latest validated epoch (-1: not recorded, an older file)
  std::string best_valid_json = RankingMetrics().to_json(), test_at_best_json = RankingMetrics().to_json();

  // Records the validation after `epoch`; returns whether it is a new best (higher NDCG@10), which
  // then becomes best_valid, best_epoch and best_valid_json.
  bool record_validation(int64_t epoch, const RankingMetrics& valid);

  std::map<std::string, std::string> to_metadata() const;
  // Throws naming the file and the missing key when the file is not a training state. A file
  // written before --patience existed counts no validations since its best.
  static TrainingPosition from_metadata(const SafetensorsFile& file);
};

RankingMetrics metrics_from_json(const std::string& text);  // RankingMetrics::to_json's inverse

// What a run is, as a state records it and a resuming run is compared with.
struct RunIdentity {
  std::string config_json;  // the model config, as its to_json writes it
  // A saved config through the model's from_json and to_json: fields that older files lack get
  // their defaults, so they compare equal to a run that leaves them at the default.
  std::function<std::string(const std::string&)> normalize_config;
  std::string optimizer;    // "adamw", or "muon (policy P)": the optimizer state's layout
  int64_t batch_size = 0, total_steps = 0;
  uint64_t seed = 0;
  std::string command, settings;  // TrainOptions' record of the invocation (not compared on resume)
  // Settings by flag name (the value as text). A resumed run may change `tunable` ones (the
  // optimizer's hyperparameters and schedule, gradient clipping, the validation interval and
  // patience): noted, as the run then no longer repeats the uninterrupted one. It may not change
  // `fixed` ones: how validation picks the best epoch (seen-item filtering; TIGER's beam and
  // validation sample) and TrainOptions::fixed_settings.
  std::map<std::string, std::string> tunable, fixed;
};
RunIdentity run_identity(const TrainOptions& options, std::string config_json,
                         std::function<std::string(const std::string&)> normalize_config, int64_t total_steps);

// The metadata of a --save-last file (and of a sequential model's --checkpoint): the position, the
// run's identity and the data's shape.
std::map<std::string, std::string> training_state_metadata(const TrainingPosition& position, const RunIdentity& run,
                                                           const data::SequenceDataset& dataset);

// The metrics file's first record of an invocation (a resumed run adds its own): {"kind": "run"}
// with the engine version, the command and settings, the model config, the optimizer, batch size,
// seed, epochs and schedule length, the data (source and shape), the device and the state resumed
// from, if any.
std::string run_record_json(const RunIdentity& run, const TrainOptions& options, const data::SequenceDataset& dataset,
                            Device device);

// Throws, naming the file, when the state was trained on data of another shape (users, items,
// events), other histories (a fingerprint of every user's items and times, in order) or numbering
// its items otherwise (check_item_numbering). Files without the records (older ones) pass.
void check_state_data(const SafetensorsFile& file, const data::SequenceDataset& dataset);

// Checkpoints record how the data numbered its items (a fingerprint of the item ids of the source
// behind every dense id), so that a model is never read against data that numbers them otherwise:
// its scores would land on the wrong items, silently (MovieLens files renumbered after an edit,
// say). check_item_numbering throws, naming the file, on a mismatch; files without it pass.
void add_item_numbering(std::map<std::string, std::string>& metadata, const data::SequenceDataset& dataset);
void check_item_numbering(const SafetensorsFile& file, const data::SequenceDataset& dataset);

// A line for the log when an evaluation filters seen items otherwise than the run that wrote the
// checkpoint did ("" when alike or not recorded): a different number is then no surprise.
std::string seen_filter_note(const SafetensorsFile& file, const EvalOptions& eval);
// A line for the log when the file holds parameters of another epoch than its run's best validation
// (a --save-last state): its test metrics are then not the run's reported ones.
std::string parameters_epoch_note(const SafetensorsFile& file);
// A line for the log when the file's HSTU learned a time bias (a "param.*time_bias" tensor holds a
// value other than 0) and `dataset` has no timestamps: it then scores without the bias, unlike the
// trained model (a prepared .txt beside its .inter, say).
std::string time_bias_note(const SafetensorsFile& file, const data::SequenceDataset& dataset);

// A --resume file, opened and checked before its tensors are loaded into the model.
struct TrainingState {
  SafetensorsFile file;
  TrainingPosition position;
};
// Throws, naming the file, when it is not a training state (a TIGER --checkpoint has no position),
// was trained on data of another shape, for another model config (naming each field that differs)
// or with another optimizer, or other fixed settings (RunIdentity::fixed, naming each), or when
// --stop-after-epoch does not lie after its epoch or --epochs is behind it. A different batch size,
// seed, schedule length or tunable setting is allowed and noted in `log`: the resumed run then no
// longer repeats the uninterrupted one. Files from before a record existed pass its check.
TrainingState open_training_state(const TrainOptions& options, const RunIdentity& run,
                                  const data::SequenceDataset& dataset, std::ostream& log);

// Loads a checked state into the run: the parameters, the optimizer state and the dropout stream's
// offset; logs "resumed from FILE after epoch N (step S)".
void restore_training_state(const TrainingState& state, ParameterList& params, OptimizerSet& optimizer,
                            PhiloxGenerator& dropout_rng, std::ostream& log);

// The last epoch this invocation trains, unless --patience ends it sooner: --epochs, or
// --stop-after-epoch when that comes first.
int64_t last_epoch(const TrainOptions& options);
// Whether the run goes on to train `epoch` from `position`: not past last_epoch, and --patience not
// exhausted.
bool trains_epoch(const TrainOptions& options, const TrainingPosition& position, int64_t epoch);
// The steps this invocation has left after `step_in_epoch` steps of `epoch` (for the ETA: counted
// from where the loop is, so a resumed run with another --batch counts its own steps).
int64_t steps_left(const TrainOptions& options, int64_t epoch, int64_t step_in_epoch, int64_t steps_per_epoch);

// Whether --patience ends the run at this position: patience > 0 and at least that many
// validations since the best one (the count carries over a resume, whatever the resumed run's
// --eval-every).
bool patience_exhausted(const TrainOptions& options, const TrainingPosition& position);

// How a training loop's run of epochs ended.
enum class RunEnd {
  Finished,  // all --epochs trained (patience running out at the last epoch included)
  Patience,  // --patience ended it before the last epoch: the best epoch is tested as usual
  Paused,    // --stop-after-epoch ended it: the test is left to the resumed run
};
// Says how the run ended at `position` (logs "early stop after epoch N: ..." or "stopped after
// epoch N of M: continue with --resume FILE") and records a patience stop in `result`.
RunEnd end_of_run(const TrainOptions& options, const TrainingPosition& position, TrainResult& result,
                  std::ostream& log);

// Adds what says how a file was made to checkpoint metadata: the engine version, and the run's
// command and settings when it has them.
void add_provenance(std::map<std::string, std::string>& metadata, const std::string& command,
                    const std::string& settings);

}  // namespace muonrec
