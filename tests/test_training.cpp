// End to end on the built-in synthetic dataset (CPU): the model learns far beyond the most-popular
// baseline, training is deterministic for a seed, and a checkpoint reproduces the test metrics.
#include <array>
#include <chrono>
#include <cmath>
#include <fmt/format.h>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <tuple>

#include "muonrec/models/checkpoint_info.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/trainer.h"
#include "muonrec/models/training_position.h"
#include "test_util.h"
#include "tiny_model_config.h"
#include "train_util.h"

using namespace muonrec;

namespace {

data::SequenceDataset small_dataset() { return testkit::small_synthetic_dataset(400, 120, 10, 30); }

// A checkpoint whose config was damaged is refused naming the file, before the model it describes
// is allocated: a fraction where a whole number belongs, a size that disagrees with its tensors.
TEST(Checkpoint, a_damaged_config_is_refused_naming_the_file) {
  testkit::TempDir dir;
  ModelConfig config = testkit::tiny_model_config("sasrec", 30, 8, 1);
  auto model = make_model(config, Device::CPU, 1);
  const std::map<std::string, Tensor> tensors = model->parameters().named("param.");
  auto save_with_config = [&](const std::string& name, const std::string& config_json) {
    const std::string path = dir.path(name);
    save_safetensors(path, tensors, {{"config", config_json}});
    return path;
  };
  const std::string good = save_with_config("good.safetensors", config.to_json());
  EXPECT_NO_THROW(load_model_checkpoint(good, Device::CPU));
  nlohmann::json j = nlohmann::json::parse(config.to_json());
  j["d"] = 8.5;
  const std::string fraction = save_with_config("fraction.safetensors", j.dump());
  testkit::expect_error([&] { load_model_checkpoint(fraction, Device::CPU); },
                        {fraction + ": model config field 'd' is 8.5, not a whole number"});
  j = nlohmann::json::parse(config.to_json());
  j["n_items"] = 1000000000000;
  const std::string huge = save_with_config("huge.safetensors", j.dump());
  testkit::expect_error([&] { load_model_checkpoint(huge, Device::CPU); },
                        {huge + ": its config (sasrec with n_items 1000000000000, d ",
                         "does not match its item table [31, "});
  // Another family's config says what it is before a field it lacks.
  testkit::expect_error([] { ModelConfig::from_json(R"({"kind": "tiger", "vocab_sizes": [4, 4]})"); },
                        {"model config: kind is 'tiger', not sasrec, bert4rec or hstu (a TIGER checkpoint"});
  j = nlohmann::json::parse(config.to_json());
  j["heads"] = 3;
  const std::string heads = save_with_config("heads.safetensors", j.dump());
  testkit::expect_error([&] { load_model_checkpoint(heads, Device::CPU); }, {heads + ": ", "heads=3"});
  // A block count no file could hold is refused before a model that deep is built (that took
  // minutes); a smaller wrong count is refused by the tensors it lacks.
  j = nlohmann::json::parse(config.to_json());
  j["blocks"] = 100000000;
  const std::string deep = save_with_config("deep.safetensors", j.dump());
  testkit::expect_error([&] { load_model_checkpoint(deep, Device::CPU); },
                        {deep + ": its config asks for 100000000 blocks, more than its ", " parameter tensors"});
  // So is a table or layer larger than the file's largest tensor (a window of 10^7 positions took
  // 633 MB and 5 s to refuse, by the tensor shapes, once the model was built).
  for (const auto& [field, description] : std::vector<std::pair<std::string, std::string>>{
           {"maxlen", "maxlen x d = 80000000 elements"},
           {"ff", "ff x d = 80000000 elements"},
           {"head_dim", "heads x head-dim x d = 160000000 elements"}}) {
    j = nlohmann::json::parse(config.to_json());
    j[field] = 10000000;
    const std::string wide = save_with_config(field + ".safetensors", j.dump());
    testkit::expect_error([&] { load_model_checkpoint(wide, Device::CPU); },
                          {wide + ": its config asks for a parameter of " + description,
                           "more than its largest parameter tensor holds (248)"});
  }
  j = nlohmann::json::parse(config.to_json());
  j["blocks"] = 2;
  const std::string two = save_with_config("two_blocks.safetensors", j.dump());
  testkit::expect_error([&] { load_model_checkpoint(two, Device::CPU); },
                        {two + ": missing parameter 'param.blocks.1."});
}

// A model saved by hand (the API's researchers) loads back as the same model, and its file knows
// how the data numbered its items, as a trained run's checkpoint does.
TEST(Checkpoint, a_saved_model_loads_back_and_refuses_data_numbered_otherwise) {
  testkit::TempDir dir;
  const data::SequenceDataset ds = small_dataset();
  auto model = make_model(testkit::tiny_model_config("sasrec", ds.n_items, 8, 1), Device::CPU, 4);
  const std::string path = dir.path("model.safetensors");
  save_model(path, *model, ds);
  SafetensorsFile file;
  auto loaded = load_model_checkpoint(path, Device::CPU, &file);
  EXPECT_EQ(file.metadata.at("data"), ds.source);
  EXPECT_FALSE(std::any_of(file.tensors.begin(), file.tensors.end(),
                           [](const auto& entry) { return entry.first.rfind("param.", 0) != 0; }));
  EvalOptions eval;
  EXPECT_EQ(evaluate_model(*loaded, ds, data::EvalSplit::Test, eval).summary(),
            evaluate_model(*model, ds, data::EvalSplit::Test, eval).summary());
  EXPECT_NO_THROW(check_item_numbering(file, ds));
  data::SequenceDataset renumbered = ds;
  renumbered.item_source_ids[5] = 1000;
  testkit::expect_error([&] { check_item_numbering(file, renumbered); }, {path, "numbers its items otherwise"});
  renumbered.item_source_ids[5] = ds.item_source_ids[5] + (int64_t{1} << 32);  // 64-bit ids: every byte counts
  testkit::expect_error([&] { check_item_numbering(file, renumbered); }, {path, "numbers its items otherwise"});
  // Named items: {"ab", "c"} and {"a", "bc"} name other items, though their letters run alike.
  data::SequenceDataset named = ds;
  named.item_tokens.assign(static_cast<size_t>(ds.n_items + 1), "");
  for (int64_t item = 1; item <= ds.n_items; ++item) named.item_tokens[item] = "i" + std::to_string(item);
  named.item_tokens[1] = "ab";
  named.item_tokens[2] = "c";
  save_model(path, *model, named);
  file = load_safetensors(path);
  EXPECT_NO_THROW(check_item_numbering(file, named));
  named.item_tokens[1] = "a";
  named.item_tokens[2] = "bc";
  testkit::expect_error([&] { check_item_numbering(file, named); }, {path, "numbers its items otherwise"});
}

// `info` on a state that lacks some training fields (written by hand or by another tool) says which,
// rather than printing blanks.
TEST(Checkpoint, info_names_the_training_fields_a_state_lacks) {
  testkit::TempDir dir;
  const ModelConfig config = testkit::tiny_model_config("sasrec", 30, 8, 1);
  auto model = make_model(config, Device::CPU, 1);
  const std::string path = dir.path("partial.safetensors");
  save_safetensors(path, model->parameters().named("param."),
                   {{"config", config.to_json()}, {"optimizer", "adamw"}, {"batch_size", "32"}});
  const std::string info = describe_checkpoint(load_safetensors(path));
  EXPECT_NE(info.find("training: epoch not recorded, best epoch not recorded; optimizer adamw, batch 32, seed not "
                      "recorded, schedule length not recorded\n"),
            std::string::npos)
      << info;
}

// A TIGER training state keeps the best epoch's parameters under "best.": `info` counts them as
// neither parameters nor optimizer state.
TEST(Checkpoint, info_counts_the_best_epochs_copies_as_neither_parameters_nor_optimizer_state) {
  testkit::TempDir dir;
  const ModelConfig config = testkit::tiny_model_config("sasrec", 30, 8, 1);
  auto model = make_model(config, Device::CPU, 1);
  std::map<std::string, Tensor> tensors = model->parameters().named("param.");
  const int64_t parameter_tensors = static_cast<int64_t>(tensors.size());
  int64_t parameters = 0;
  for (const auto& [name, tensor] : model->parameters().named("param.")) {
    parameters += tensor.numel();
    tensors["best." + name] = tensor;
  }
  tensors["adamw.step"] = Tensor::from_i64({3}, {1});
  tensors["optimizer_set.step"] = Tensor::from_i64({3}, {1});
  const std::string path = dir.path("state.safetensors");
  save_safetensors(path, tensors, {{"config", config.to_json()}});
  const std::string info = describe_checkpoint(load_safetensors(path));
  EXPECT_NE(info.find(fmt::format("parameters: {} in {} tensors; optimizer state: 2 tensors\n", parameters,
                                  parameter_tensors)),
            std::string::npos)
      << info;
  // Tensors of no muonrec kind (a fixture's inputs) are counted apart, not called optimizer state.
  tensors["input.x"] = Tensor::zeros({2}, DType::F32);
  tensors["grad.x"] = Tensor::zeros({2}, DType::F32);
  save_safetensors(path, tensors, {{"config", config.to_json()}});
  EXPECT_NE(describe_checkpoint(load_safetensors(path))
                .find("; optimizer state: 2 tensors; 2 other tensors (as 'grad.x')\n"),
            std::string::npos)
      << describe_checkpoint(load_safetensors(path));
}

// Each model's checkpoint loads back whole, whatever its item table holds beyond the catalogue
// (BERT4Rec's [MASK] row).
TEST(Checkpoint, every_model_kind_loads_back_with_the_same_parameters) {
  testkit::TempDir dir;
  for (const char* kind : {"sasrec", "bert4rec", "hstu"}) {
    const ModelConfig config = testkit::tiny_model_config(kind, 30, 8, 1);
    auto model = make_model(config, Device::CPU, 2);
    const std::map<std::string, Tensor> tensors = model->parameters().named("param.");
    const std::string path = dir.path(std::string(kind) + ".safetensors");
    save_safetensors(path, tensors, {{"config", config.to_json()}});
    std::unique_ptr<SequentialModel> loaded;
    ASSERT_NO_THROW(loaded = load_model_checkpoint(path, Device::CPU)) << kind;
    for (const auto& [name, tensor] : loaded->parameters().named("param."))
      EXPECT_EQ(tensor.to_f32_vector(), tensors.at(name).to_f32_vector()) << kind << " " << name;
  }
}

// Parameters that are not finite numbers (a damaged file, a diverged run) are refused on loading,
// naming the file, the tensor and the element.
TEST(Checkpoint, parameters_that_are_not_finite_are_refused) {
  testkit::TempDir dir;
  const ModelConfig config = testkit::tiny_model_config("sasrec", 30, 8, 1);
  auto model = make_model(config, Device::CPU, 3);
  std::map<std::string, Tensor> tensors = model->parameters().named("param.");
  Tensor pos = tensors.at("param.pos.weight").to(Device::CPU).clone();
  pos.data<float>()[5] = NAN;
  tensors["param.pos.weight"] = pos;
  const std::string path = dir.path("nan.safetensors");
  save_safetensors(path, tensors, {{"config", config.to_json()}});
  testkit::expect_error([&] { load_model_checkpoint(path, Device::CPU); },
                        {path + ": parameter 'param.pos.weight' holds nan at element 5 (a damaged file"});
}

ModelConfig small_config(int64_t n_items) {
  ModelConfig c;
  c.n_items = n_items;
  c.max_len = 20;
  c.d = 32;
  c.blocks = 1;
  c.heads = 2;
  c.dropout = 0.1f;
  return c;
}

TrainOptions small_options(int64_t epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch_size = 64;
  o.optimizer.adamw.lr = 5e-3f;
  o.eval_every = epochs;
  o.progress_seconds = 1e9;
  return o;
}

}  // namespace

TEST(Training, sasrec_beats_most_popular_and_checkpoint_reproduces_test_metrics) {
  data::SequenceDataset ds = small_dataset();
  auto model = make_model(small_config(ds.n_items), Device::CPU, 1);
  TrainOptions options = small_options(8);
  options.checkpoint_path = testkit::scratch_path("ckpt.safetensors");
  options.metrics_path = testkit::scratch_path("metrics.jsonl");
  std::ostringstream log;
  TrainResult result = train_model(*model, ds, options, log);
  EXPECT_NE(log.str().find("steps/s"), std::string::npos);
  EXPECT_NE(log.str().find("ETA"), std::string::npos);

  RankingMetrics pop = evaluate_popularity(ds, data::EvalSplit::Test, options.eval);
  EXPECT_GT(result.test_at_best.ndcg10, 2.0 * pop.ndcg10) << "model " << result.test_at_best.summary()
                                                          << " vs popularity " << pop.summary();

  auto restored = load_model_checkpoint(options.checkpoint_path, Device::CPU);
  RankingMetrics again = evaluate_model(*restored, ds, data::EvalSplit::Test, options.eval);
  EXPECT_EQ(again.to_json(), result.test_at_best.to_json());

  std::ifstream metrics(options.metrics_path);
  std::string line, first;
  int lines = 0;
  while (std::getline(metrics, line))
    if (lines++ == 0) first = line;
  EXPECT_EQ(lines, 10);  // the run, 8 epochs and the result
  EXPECT_EQ(nlohmann::json::parse(first).at("kind"), "run");
}

TEST(Training, a_model_for_another_catalogue_is_refused_before_training) {
  data::SequenceDataset ds = small_dataset();
  auto model = make_model(small_config(ds.n_items - 1), Device::CPU, 5);
  std::ostringstream log;
  testkit::expect_error([&] { train_model(*model, ds, small_options(1), log); },
                        {fmt::format("train: the dataset has {} items, the model {}", ds.n_items, ds.n_items - 1)});
}

TEST(Training, same_seed_gives_identical_results) {
  data::SequenceDataset ds = small_dataset();
  auto run = [&]() {
    auto model = make_model(small_config(ds.n_items), Device::CPU, 5);
    std::ostringstream log;
    train_model(*model, ds, small_options(2), log);
    return model->parameters().find("blocks.0.fc1.weight").to_f32_vector();
  };
  EXPECT_EQ(run(), run());
}

TEST(Training, popularity_metrics_are_exact_on_a_tiny_dataset) {
  // Three users; item 1 is the most popular in the training parts.
  data::SequenceDataset ds;
  ds.source = "handmade";
  ds.n_items = 4;
  ds.sequences = {{1, 2, 3, 4}, {1, 3, 2, 1}, {1, 4, 3, 2}};
  ds.user_ids = {1, 2, 3};
  EvalOptions o;
  o.filter_seen = false;
  RankingMetrics m = evaluate_popularity(ds, data::EvalSplit::Test, o);
  // train counts: item1 3, item2 1, item3 1, item4 1 -> the list 1, 2, 3, 4 (ties by item id), so
  // the targets 4, 1 and 2 rank 3, 0 and 1.
  EXPECT_EQ(m.users, 3);
  EXPECT_NEAR(m.hr1, 1.0 / 3.0, 1e-12);  // user 2's target (item 1) ranks first
  EXPECT_NEAR(m.mrr, (0.25 + 1.0 + 0.5) / 3.0, 1e-12);
  // Every cut-off holds all three targets; NDCG's gain at rank r (from 0) is 1 / log2(r + 2).
  const double ndcg = (1.0 / std::log2(5.0) + 1.0 + 1.0 / std::log2(3.0)) / 3.0;
  for (double hr : {m.hr10, m.hr50, m.hr200}) EXPECT_NEAR(hr, 1.0, 1e-12);
  for (double v : {m.ndcg10, m.ndcg50, m.ndcg200}) EXPECT_NEAR(v, ndcg, 1e-12);

  // Seen items filtered: the inputs {1, 2, 3}, {1, 3, 2}, {1, 4, 3} leave each target 4, 1 (a
  // target is never filtered) and 2 first.
  o.filter_seen = true;
  EXPECT_NEAR(evaluate_popularity(ds, data::EvalSplit::Test, o).mrr, 1.0, 1e-12);
  // Only the last item of each input: {3}, {2}, {3} leave ranks 2, 0 and 1.
  o.filter_seen_last = 1;
  EXPECT_NEAR(evaluate_popularity(ds, data::EvalSplit::Test, o).mrr, (1.0 / 3.0 + 1.0 + 0.5) / 3.0, 1e-12);
  const std::vector<int64_t> history = {5, 6, 7};
  EXPECT_EQ(seen_items(history.data(), 3, 0), history);
  EXPECT_EQ(seen_items(history.data(), 3, 2), (std::vector<int64_t>{6, 7}));
  EXPECT_EQ(seen_items(history.data(), 3, 9), history);
}

namespace {

// Trains 4 epochs straight, and 2 + 2 epochs through --save-last / --resume, on one device; losses,
// weights and test metrics must agree bit for bit (every kernel on the path is deterministic). The
// best checkpoint of epoch 2 (the first validation is always a new best) resumes the same way.
void expect_resume_is_bit_identical(Device device) {
  data::SequenceDataset ds = small_dataset();
  for (std::string optimizer : {"adamw", "muon"}) {
    TrainOptions options = small_options(4);
    options.eval_every = 2;
    options.optimizer.optimizer = optimizer;
    options.optimizer.schedule.kind = LrSchedule::Kind::Cosine;
    options.optimizer.schedule.warmup_steps = 3;
    std::ostringstream log;

    auto straight = make_model(small_config(ds.n_items), device, 9);
    TrainResult full = train_model(*straight, ds, options, log);

    TrainOptions first_half = options;
    first_half.stop_after_epoch = 2;
    const std::string run = optimizer + "_" + device_name(device);
    first_half.last_checkpoint_path = testkit::scratch_path(run + "_last.safetensors");
    first_half.checkpoint_path = testkit::scratch_path(run + "_best.safetensors");
    auto interrupted = make_model(small_config(ds.n_items), device, 9);
    train_model(*interrupted, ds, first_half, log);
    EXPECT_NE(log.str().find("stopped after epoch 2 of 4: continue with --resume " + first_half.last_checkpoint_path),
              std::string::npos)
        << log.str();

    for (const std::string& state : {first_half.last_checkpoint_path, first_half.checkpoint_path}) {
      TrainOptions second_half = options;
      second_half.resume_path = state;
      auto resumed = make_model(small_config(ds.n_items), device, 123);  // weights come from the state
      TrainResult rest = train_model(*resumed, ds, second_half, log);

      ASSERT_EQ(full.epoch_losses.size(), 4u);
      ASSERT_EQ(rest.epoch_losses.size(), 2u) << state;
      EXPECT_EQ(rest.epoch_losses[0], full.epoch_losses[2]) << optimizer << " " << state;
      EXPECT_EQ(rest.epoch_losses[1], full.epoch_losses[3]) << optimizer << " " << state;
      for (const auto& p : straight->parameters().all())
        EXPECT_EQ(p.tensor.to_f32_vector(), resumed->parameters().find(p.name).to_f32_vector())
            << optimizer << " " << p.name << " " << state;
      EXPECT_EQ(rest.test_at_best.to_json(), full.test_at_best.to_json()) << optimizer << " " << state;
    }
  }
}

}  // namespace

TEST(Training, resumed_run_reproduces_the_uninterrupted_run_bit_for_bit_cpu) {
  expect_resume_is_bit_identical(Device::CPU);
}

TEST(Training, resumed_run_reproduces_the_uninterrupted_run_bit_for_bit_gpu) {
  SKIP_WITHOUT_GPU();
  expect_resume_is_bit_identical(Device::CUDA);
}

TEST(Training, resume_rejects_a_file_that_is_not_a_training_state) {
  data::SequenceDataset ds = small_dataset();
  auto model = make_model(small_config(ds.n_items), Device::CPU, 1);
  std::string path = testkit::scratch_path("not_state.safetensors");
  save_safetensors(path, model->parameters().named("param."), {{"config", model->config().to_json()}});
  TrainOptions options = small_options(2);
  options.resume_path = path;
  std::ostringstream log;
  try {
    train_model(*model, ds, options, log);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// A state resumes only the run that wrote it: the same model config, data of the same shape, the
// same optimizer, and a --stop-after-epoch still ahead; each refusal names the file and what
// differs. Fields that older states lack compare as their defaults; a different batch size is
// accepted with a note.
TEST(Training, resume_refuses_a_state_written_for_another_run) {
  data::SequenceDataset ds = small_dataset();
  TrainOptions options = small_options(3);
  options.stop_after_epoch = 1;
  options.last_checkpoint_path = testkit::scratch_path("other_run_last.safetensors");
  std::ostringstream log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, options, log);

  TrainOptions resume = small_options(3);
  resume.resume_path = options.last_checkpoint_path;
  ModelConfig wider = small_config(ds.n_items);
  wider.d = 16;
  wider.dropout = 0.2f;
  testkit::expect_error([&] { train_model(*make_model(wider, Device::CPU, 1), ds, resume, log); },
                        {resume.resume_path, "another model (d: 32 in the state, 16 now; dropout: 0.1 in the state, "
                                             "0.2 now)"});
  // A field whose flag is named otherwise is given with its flag.
  ModelConfig masked = small_config(ds.n_items);
  masked.mask_prob = 0.4f;
  testkit::expect_error([&] { train_model(*make_model(masked, Device::CPU, 1), ds, resume, log); },
                        {"another model (mask_prob (--mask-prob): 0.2 in the state, 0.4 now)"});

  // Data of another shape is named as such, before the model's item count differs too.
  data::SequenceDataset other = testkit::small_synthetic_dataset(300, 90, 10, 30);
  testkit::expect_error(
      [&] { train_model(*make_model(small_config(other.n_items), Device::CPU, 1), other, resume, log); },
      {"400 users, 120 items", "300 users, 90 items"});

  TrainOptions muon = resume;
  muon.optimizer.optimizer = "muon";
  testkit::expect_error([&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, muon, log); },
                        {"the optimizer state of adamw, this run asks for muon (policy muonrec)"});

  // The same shape and numbering with other histories (a user's items reversed), or other times:
  // refused, naming both data.
  data::SequenceDataset reordered = ds;
  std::reverse(reordered.sequences[3].begin(), reordered.sequences[3].end());
  data::SequenceDataset retimed = ds;
  ASSERT_TRUE(retimed.has_timestamps());
  retimed.timestamps[0][0] -= 1;
  for (const data::SequenceDataset& other_histories : {reordered, retimed})
    testkit::expect_error(
        [&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), other_histories, resume, log); },
        {resume.resume_path, "whose histories differ from those of", "resume on the data it trained on"});

  // A position that does not hang together: a best NDCG that is none (NaN would make every
  // validation a new best), a best epoch after the state's epoch.
  for (const auto& [key, value, complaint] : std::vector<std::array<std::string, 3>>{
           {"best_valid_ndcg10", "nan", "'best_valid_ndcg10' metadata 'nan' is no NDCG"},
           {"best_valid_ndcg10", "1.5", "'best_valid_ndcg10' metadata '1.5' is no NDCG"},
           {"best_epoch", "99", "its best epoch 99 is after its epoch 1"}}) {
    SafetensorsFile damaged = load_safetensors(options.last_checkpoint_path);
    damaged.metadata[key] = value;
    TrainOptions from_damaged = resume;
    from_damaged.resume_path = testkit::scratch_path("damaged_position.safetensors");
    save_safetensors(from_damaged.resume_path, damaged.tensors, damaged.metadata);
    testkit::expect_error(
        [&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, from_damaged, log); },
        {from_damaged.resume_path, complaint});
  }

  // Data that numbers its items otherwise, in the same shape: refused by resume (and by eval and
  // recommend, which check the same record).
  data::SequenceDataset renumbered = ds;
  renumbered.item_source_ids[5] = 1000;
  EXPECT_NO_THROW(check_item_numbering(load_safetensors(options.last_checkpoint_path), ds));
  testkit::expect_error([&] { check_item_numbering(load_safetensors(options.last_checkpoint_path), renumbered); },
                        {options.last_checkpoint_path, "numbers its items otherwise", "120 items, fnv1a "});
  testkit::expect_error(
      [&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), renumbered, resume, log); },
      {"numbers its items otherwise"});
  // Items named by strings (RecBole tokens) number the sorted tokens: the same ranks with other
  // names are other items.
  data::SequenceDataset named = ds;
  named.item_tokens.assign(static_cast<size_t>(ds.n_items + 1), "B0");
  for (int64_t i = 1; i <= ds.n_items; ++i) named.item_tokens[i] += std::to_string(1000 + i);
  data::SequenceDataset renamed = named;
  renamed.item_tokens[5] = "B0999";
  std::map<std::string, std::string> record;
  add_item_numbering(record, named);
  const std::string named_state = options.last_checkpoint_path + ".named";
  save_safetensors(named_state, {{"x", Tensor::zeros({1})}}, record);
  EXPECT_NO_THROW(check_item_numbering(load_safetensors(named_state), named));
  testkit::expect_error([&] { check_item_numbering(load_safetensors(named_state), renamed); },
                        {"numbers its items otherwise"});

  // Validation must pick the best epoch as before.
  TrainOptions unfiltered = resume;
  unfiltered.eval.filter_seen = false;
  testkit::expect_error(
      [&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, unfiltered, log); },
      {resume.resume_path, "other settings", "--no-filter-seen true (the state's run: false)", "resume with its flags"});

  TrainOptions behind = resume;
  behind.stop_after_epoch = 1;
  behind.last_checkpoint_path = testkit::scratch_path("other_run_again.safetensors");
  testkit::expect_error([&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, behind, log); },
                        {"--stop-after-epoch 1 is not after the state's epoch 1"});

  // An older state: its config without head_dim (added later), no data shape, no run record.
  SafetensorsFile state = load_safetensors(options.last_checkpoint_path);
  nlohmann::json config = nlohmann::json::parse(state.metadata.at("config"));
  config.erase("head_dim");
  state.metadata["config"] = config.dump();
  for (const char* key : {"data_shape", "data_histories", "optimizer", "batch_size", "seed", "total_steps",
                          "tunable_settings", "fixed_settings"})
    state.metadata.erase(key);
  const std::string old_state = testkit::scratch_path("older_state.safetensors");
  save_safetensors(old_state, state.tensors, state.metadata);
  TrainOptions from_old = resume;
  from_old.resume_path = old_state;
  from_old.batch_size = 32;
  from_old.eval.filter_seen = false;
  std::ostringstream old_log;
  TrainResult rest = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, from_old, old_log);
  EXPECT_EQ(rest.epoch_losses.size(), 2u);

  // Damaged position fields are refused naming the file and the key, before the run resumes.
  const std::vector<std::tuple<const char*, const char*, const char*>> damage = {
      {"epoch", "abc", "is not a count"},
      {"dropout_offset", "-5", "is not a count"},
      {"best_epoch", "123456789012345678901234", "is not a count"},
      {"best_valid_ndcg10", "0.1x", "is not a number"},
      {"test_metrics", "{\"users\": 3", "is not a metrics record"}};
  for (const auto& [key, value, message] : damage) {
    SafetensorsFile damaged = load_safetensors(options.last_checkpoint_path);
    damaged.metadata[key] = value;
    const std::string path = testkit::scratch_path("damaged_state.safetensors");
    save_safetensors(path, damaged.tensors, damaged.metadata);
    TrainOptions from_damaged = resume;
    from_damaged.resume_path = path;
    testkit::expect_error(
        [&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, from_damaged, log); },
        {path, std::string("'") + key + "'", message});
  }

  TrainOptions other_batch = resume;
  other_batch.batch_size = 32;
  std::ostringstream batch_log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, other_batch, batch_log);
  EXPECT_NE(batch_log.str().find("resuming with batch 32 (the state's run: 64): the run will not repeat"),
            std::string::npos)
      << batch_log.str();
  // A constant schedule does not depend on the run's length: more epochs repeat the longer run.
  TrainOptions longer = resume;
  longer.epochs += 2;
  std::ostringstream longer_log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, longer, longer_log);
  EXPECT_EQ(longer_log.str().find("resuming with"), std::string::npos) << longer_log.str();
  TrainOptions cosine = longer;
  cosine.optimizer.schedule.kind = LrSchedule::Kind::Cosine;
  std::ostringstream cosine_log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, cosine, cosine_log);
  EXPECT_NE(cosine_log.str().find("schedule steps"), std::string::npos) << cosine_log.str();
  // Other optimizer hyperparameters: allowed, and said.
  TrainOptions other_lr = resume;
  other_lr.optimizer.adamw.lr = 1e-3f;
  other_lr.max_grad_norm = 1.0f;
  std::ostringstream lr_log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, other_lr, lr_log);
  EXPECT_NE(lr_log.str().find("resuming with --clip-grad-norm 1 (the state's run: 0), --lr 0.001 (the state's run: "
                              "0.005): the run will not repeat"),
            std::string::npos)
      << lr_log.str();
  // Validating at other epochs, or stopping early after other counts, changes which epoch is best.
  TrainOptions other_validation = resume;
  other_validation.eval_every = resume.eval_every + 1;
  other_validation.patience = resume.patience + 1;
  std::ostringstream validation_log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, other_validation, validation_log);
  EXPECT_NE(validation_log.str().find(fmt::format("resuming with --eval-every {} (the state's run: {}), --patience {} "
                                                  "(the state's run: {}): the run will not repeat",
                                                  other_validation.eval_every, resume.eval_every,
                                                  other_validation.patience, resume.patience)),
            std::string::npos)
      << validation_log.str();
  // The floor belongs to the cosine schedule: under a constant one (this run's) it is no setting.
  TrainOptions other_floor = resume;
  other_floor.optimizer.schedule.min_lr = 1e-5f;
  std::ostringstream floor_log;
  train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, other_floor, floor_log);
  EXPECT_EQ(floor_log.str().find("min-lr"), std::string::npos) << floor_log.str();
}

TEST(TrainOptions, check_refuses_an_early_stop_with_nowhere_to_keep_the_state) {
  TrainOptions options = small_options(3);
  options.stop_after_epoch = 2;
  testkit::expect_error([&] { options.check("train"); }, {"add --save-last"});
  options.last_checkpoint_path = "state.safetensors";
  options.check("train");
  options.batch_size = 0;
  testkit::expect_error([&] { options.check("train"); }, {"train: --batch must be positive (got 0)"});
  options.batch_size = 64;
  options.eval_every = 0;
  testkit::expect_error([&] { options.check("train"); }, {"train: --eval-every must be positive (got 0)"});
  options.eval_every = 1;
  options.eval.batch_size = -1;
  testkit::expect_error([&] { options.check("train"); }, {"train: --eval-batch must be positive (got -1)"});
  options.eval.batch_size = 256;
  // The warm-up against the run's steps, which need the batches per epoch.
  options.optimizer.schedule.warmup_steps = 6;
  options.check_warmup_fits("train", 3);  // 3 epochs x 3 steps
  testkit::expect_error([&] { options.check_warmup_fits("train", 2); },
                        {"train: --warmup-steps 6 is not shorter than the run's 6 optimizer steps (--epochs 3 x 2 "
                         "steps per epoch)"});
  options.optimizer.schedule.warmup_steps = -5;
  testkit::expect_error([&] { options.check("train"); }, {"--warmup-steps and --min-lr must not be negative (got 0, -5"});
  options.optimizer.schedule.warmup_steps = 0;
  options.optimizer.muon.lr = -0.02f;
  testkit::expect_error([&] { options.check("train"); }, {"learning rates must be finite numbers >= 0", "Muon -0.02"});
  options.optimizer.muon.lr = 0.02f;
  options.optimizer.adamw.lr = INFINITY;
  testkit::expect_error([&] { options.check("train"); }, {"learning rates must be finite numbers >= 0", "AdamW inf"});
}

// Patience counts the validations since the best one, carried in the position (and so across a
// resume, whatever the resumed run's --eval-every); ties are not improvements.
TEST(Patience, counts_validations_since_the_best_one) {
  TrainOptions options = small_options(10);
  TrainingPosition position;
  auto validation = [](double ndcg10) {
    RankingMetrics m;
    m.users = 10;
    m.ndcg10 = ndcg10;
    return m;
  };
  EXPECT_TRUE(position.record_validation(2, validation(0.1)));
  EXPECT_FALSE(position.record_validation(4, validation(0.1)));  // a tie
  EXPECT_FALSE(position.record_validation(6, validation(0.05)));
  EXPECT_EQ(position.best_epoch, 2);
  EXPECT_EQ(position.validations_since_best, 2);
  options.patience = 0;  // off
  EXPECT_FALSE(patience_exhausted(options, position));
  options.patience = 2;
  EXPECT_TRUE(patience_exhausted(options, position));
  options.patience = 3;
  EXPECT_FALSE(patience_exhausted(options, position));
  EXPECT_TRUE(position.record_validation(8, validation(0.2)));
  EXPECT_EQ(position.validations_since_best, 0);
  EXPECT_EQ(position.best_epoch, 8);

  SafetensorsFile file;
  file.path = "state.safetensors";
  position.epoch = 8;  // the state of the run after epoch 8
  position.validations_since_best = 3;
  position.best_valid = 1.0 / 3.0;  // every digit kept: a resumed run compares later validations with it
  file.metadata = position.to_metadata();
  EXPECT_EQ(TrainingPosition::from_metadata(file).validations_since_best, 3);
  EXPECT_EQ(TrainingPosition::from_metadata(file).best_valid, 1.0 / 3.0);
  file.metadata.erase("validations_since_best");  // a file from before --patience
  EXPECT_EQ(TrainingPosition::from_metadata(file).validations_since_best, 0);

  options.patience = -1;
  testkit::expect_error([&] { options.check("train"); }, {"train: --patience must not be negative (got -1)"});
}

// The validation NDCG@10 of each epoch and the test metrics recorded at each new best, from a
// --metrics file.
struct ValidationTrace {
  std::map<int64_t, double> ndcg10;
  std::map<int64_t, std::string> test_json;
};
ValidationTrace read_validation_trace(const std::string& metrics_path) {
  ValidationTrace trace;
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json record = nlohmann::json::parse(line);
    if (record.at("kind") != "epoch" || !record.contains("valid")) continue;
    trace.ndcg10[record.at("epoch")] = record.at("valid").at("ndcg10");
    if (record.contains("test")) trace.test_json[record.at("epoch")] = record.at("test").dump();
  }
  return trace;
}

// A run with --patience 1 ends after the first validation that does not beat the best, found in
// the trace of the same run without patience (training is deterministic on the CPU); its test
// metrics are those of the best epoch, and the state saved at the stop resumes to the same stop.
TEST(Patience, ends_the_run_at_the_first_validation_without_a_new_best) {
  data::SequenceDataset ds = small_dataset();
  TrainOptions options = small_options(8);
  options.eval_every = 1;
  options.optimizer.adamw.lr = 0.3f;  // too high for this model: validation peaks early (epoch 3 of 8)
  testkit::TempDir dir;
  options.metrics_path = dir.path("all.jsonl");
  std::ostringstream all_log;
  TrainResult all = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, options, all_log);
  ASSERT_EQ(all.epoch_losses.size(), 8u);
  EXPECT_EQ(all.patience_stop_epoch, 0);
  const ValidationTrace trace = read_validation_trace(options.metrics_path);
  ASSERT_EQ(trace.ndcg10.size(), 8u);
  int64_t best_epoch = 0, stop_epoch = 0;
  double best = -1;
  for (const auto& [epoch, ndcg10] : trace.ndcg10) {
    if (ndcg10 > best) {
      best = ndcg10;
      best_epoch = epoch;
    } else {
      stop_epoch = epoch;
      break;
    }
  }
  ASSERT_GT(stop_epoch, 0) << "validation improved at every epoch: no stop to test\n" << all_log.str();
  ASSERT_LT(stop_epoch, 8);

  options.patience = 1;
  options.metrics_path = dir.path("patience.jsonl");
  options.last_checkpoint_path = dir.path("state.safetensors");
  std::ostringstream log;
  TrainResult stopped = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, options, log);
  EXPECT_EQ(stopped.epoch_losses.size(), static_cast<size_t>(stop_epoch));
  EXPECT_EQ(stopped.patience_stop_epoch, stop_epoch);
  EXPECT_EQ(stopped.best_epoch, best_epoch);
  EXPECT_EQ(nlohmann::json::parse(stopped.test_at_best.to_json()).dump(), trace.test_json.at(best_epoch));
  EXPECT_NE(log.str().find(fmt::format("early stop after epoch {}: validation NDCG@10 has not improved for 1 "
                                       "validations (best ",
                                       stop_epoch)),
            std::string::npos)
      << log.str();
  EXPECT_EQ(log.str().find("continue with --resume"), std::string::npos) << log.str();
  std::ifstream metrics(options.metrics_path);
  std::string line, last;
  while (std::getline(metrics, line))
    if (!line.empty()) last = line;
  EXPECT_EQ(nlohmann::json::parse(last).at("patience_stop_epoch"), stop_epoch);

  TrainOptions resume = options;
  resume.resume_path = options.last_checkpoint_path;
  resume.eval_every = 3;  // the count carries over, whatever the new interval
  std::ostringstream resume_log;
  TrainResult again = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, resume, resume_log);
  EXPECT_TRUE(again.epoch_losses.empty()) << resume_log.str();
  EXPECT_EQ(again.patience_stop_epoch, stop_epoch);
  EXPECT_EQ(again.test_at_best.to_json(), stopped.test_at_best.to_json());

  // Patience running out at the last epoch is a finished run, not an early stop.
  TrainOptions to_the_end = small_options(stop_epoch);
  to_the_end.eval_every = 1;
  to_the_end.optimizer.adamw.lr = options.optimizer.adamw.lr;
  to_the_end.patience = 1;
  std::ostringstream end_log;
  TrainResult finished = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, to_the_end, end_log);
  EXPECT_EQ(finished.patience_stop_epoch, 0);
  EXPECT_EQ(end_log.str().find("early stop"), std::string::npos) << end_log.str();
}

// Progress lines come when due (here: only at an epoch's last step, or at every step with a zero
// interval), with the mean of the epoch's losses read so far and the latest gradient norm.
TEST(ProgressLog, prints_when_due_with_the_epoch_mean_loss) {
  std::ostringstream out;
  ProgressLog quiet(out, 1e9, 2, 3);
  quiet.start_epoch(1);
  for (float loss : {1.0f, 2.0f, 6.0f}) quiet.add_loss(Tensor::full({}, loss));
  quiet.after_step(1, Tensor(), 2.0, 5);
  quiet.after_step(2, Tensor(), 2.0, 4);
  EXPECT_EQ(out.str(), "");
  quiet.after_step(3, Tensor::full({}, 0.5f), 2.0, 4);
  EXPECT_EQ(out.str(), "epoch 1/2  step 3/3  loss 3.0000  grad-norm 0.500  2.0 steps/s  ETA 0:02\n");
  EXPECT_DOUBLE_EQ(quiet.epoch_loss(), 3.0);
  quiet.start_epoch(2);
  EXPECT_DOUBLE_EQ(quiet.epoch_loss(), 0.0);

  std::ostringstream every;
  ProgressLog chatty(every, 0.0, 1, 3);
  chatty.start_epoch(1);
  chatty.add_loss(Tensor::full({}, 4.0f));
  chatty.after_step(1, Tensor(), 1.0, 2);
  chatty.add_loss(Tensor::full({}, 2.0f));
  chatty.after_step(2, Tensor(), 1.0, 1);
  EXPECT_EQ(every.str(), "epoch 1/1  step 1/3  loss 4.0000  1.0 steps/s  ETA 0:02\n"
                         "epoch 1/1  step 2/3  loss 3.0000  1.0 steps/s  ETA 0:01\n");
}

TEST(ProgressLog, durations_round_to_the_nearest_second_and_take_hours_from_one_hour_on) {
  EXPECT_EQ(format_duration(0.5), "0:01");
  EXPECT_EQ(format_duration(59.6), "1:00");
  EXPECT_EQ(format_duration(61.4), "1:01");
  EXPECT_EQ(format_duration(3599.4), "59:59");
  EXPECT_EQ(format_duration(3599.5), "1:00:00");
  EXPECT_EQ(format_duration(3600.0), "1:00:00");
  EXPECT_EQ(format_duration(3723.0), "1:02:03");
}

// One progress function serves every validation of a run: each pass's rate counts from its own
// start (a call with 0 done), not from when the function was made.
TEST(ProgressLog, users_per_second_count_from_the_start_of_the_pass) {
  std::ostringstream out;
  const auto progress = users_progress(out, 0.0, "validation");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // training, before the pass
  progress(0, 1000);
  progress(500, 1000);
  const std::string line = out.str();
  ASSERT_EQ(line.rfind("validation: 500/1000 users  ", 0), 0u) << line;
  // 500 users in well under the 300 ms before the pass: counted from the function's making, the
  // rate would be below 1,700 users/s.
  EXPECT_GT(std::stod(line.substr(line.find("users  ") + 7)), 5000.0) << line;
  progress(1000, 1000);  // a finished pass prints nothing
  EXPECT_EQ(out.str(), line);
}

// A loss that is not finite stops the run when it is read, after its progress line.
TEST(ProgressLog, a_loss_that_is_not_finite_stops_the_run) {
  for (float bad : {NAN, INFINITY}) {
    std::ostringstream out;
    ProgressLog log(out, 0.0, 3, 4);
    log.start_epoch(2);
    log.add_loss(Tensor::full({}, 1.0f));
    log.after_step(1, Tensor(), 1.0, 2);
    log.add_loss(Tensor::full({}, bad));
    testkit::expect_error([&] { log.after_step(2, Tensor(), 1.0, 1); },
                          {"training diverged: the loss is ", " at epoch 2, step 2 (try a lower learning rate"});
    EXPECT_NE(out.str().find("epoch 2/3  step 2/4  loss "), std::string::npos) << out.str();
  }
}

// A learning rate far too high: the run stops with that message instead of saving NaN parameters.
TEST(Training, a_diverging_run_stops_before_saving) {
  data::SequenceDataset ds = small_dataset();
  TrainOptions options = small_options(2);
  options.eval_every = 1;  // a healthy run would save a checkpoint after epoch 1
  options.optimizer.adamw.lr = 1e9f;
  options.checkpoint_path = testkit::scratch_path("diverged.safetensors");
  std::ostringstream log;
  auto model = make_model(small_config(ds.n_items), Device::CPU, 1);
  testkit::expect_error([&] { train_model(*model, ds, options, log); }, {"training diverged: the loss is "});
  EXPECT_FALSE(std::filesystem::exists(options.checkpoint_path));
}

TEST(TrainResult, the_median_epoch_time_is_one_that_was_measured) {
  TrainResult r;
  EXPECT_EQ(r.median_epoch_seconds(), 0.0);
  r.epoch_seconds = {5, 1, 3};
  EXPECT_EQ(r.median_epoch_seconds(), 3.0);
  r.epoch_seconds = {4, 1, 3, 2};
  EXPECT_EQ(r.median_epoch_seconds(), 3.0);  // the upper middle, not 2.5
}

TEST(TrainResult, summary_lines_only_say_what_the_run_measured) {
  TrainResult stopped;  // stopped before any validation
  EXPECT_EQ(stopped.summary_lines(), "");
  TrainResult done;
  done.best_epoch = 3;
  done.best_valid.users = 10;
  done.best_valid.ndcg10 = 0.25;
  EXPECT_EQ(done.summary_lines(), "best validation epoch 3: " + done.best_valid.summary() + "\n");
  done.test_at_best.users = 10;
  done.test_at_best.hr10 = 0.5;
  EXPECT_EQ(done.summary_lines(), "best validation epoch 3: " + done.best_valid.summary() +
                                      "\ntest at that epoch:     " + done.test_at_best.summary() + "\n");
}

// A run's outputs in one file would overwrite each other, and one over the data would destroy it:
// refused before training, whatever the spelling of the path.
TEST(TrainOptions, outputs_sharing_a_file_are_refused) {
  testkit::TempDir dir;
  TrainOptions options = small_options(2);
  options.metrics_path = dir.path("run.out");
  options.checkpoint_path = dir.path("sub/../run.out");
  std::filesystem::create_directory(dir.path("sub"));
  testkit::expect_error([&] { options.check_output_files({}); },
                        {"--metrics " + dir.path("run.out"), "and --checkpoint", "name the same file"});
  options.checkpoint_path = dir.path("best.safetensors");
  options.last_checkpoint_path = dir.path("./best.safetensors");
  testkit::expect_error([&] { options.check_output_files({}); }, {"--checkpoint", "and --save-last"});
  options.last_checkpoint_path = dir.path("last.safetensors");
  EXPECT_NO_THROW(options.check_output_files({dir.path("data.txt")}));
  // Nor may an output be an input (the data file), or a directory.
  const std::string data = dir.write("data.txt", "1 2\n");
  options.metrics_path = dir.path("sub/../data.txt");
  testkit::expect_error([&] { options.check_output_files({data}); },
                        {"--metrics " + options.metrics_path + " is the input file " + data});
  options.metrics_path = dir.path("sub");
  testkit::expect_error([&] { options.check_output_files({}); },
                        {"--metrics " + dir.path("sub") + ": it is a directory"});
  // The state a run resumes from: --save-last rewrites it, and no other output may replace it.
  options.metrics_path = dir.path("run.jsonl");
  options.resume_path = dir.write("last.safetensors", "a state");
  EXPECT_NO_THROW(options.check_output_files({data}));
  options.checkpoint_path = options.resume_path;
  options.last_checkpoint_path = "";
  testkit::expect_error([&] { options.check_output_files({data}); },
                        {"--checkpoint " + options.resume_path + " is the input file " + options.resume_path});
}

// A resumed or paused run says when it did not write its --checkpoint, and a state stopped before
// validating its last epoch cannot end a run there unvalidated.
TEST(Training, checkpoint_line_and_unvalidated_states) {
  data::SequenceDataset ds = small_dataset();
  testkit::TempDir dir;
  TrainOptions paused = small_options(4);  // validates at epoch 4 only
  paused.stop_after_epoch = 2;
  paused.checkpoint_path = dir.path("best.safetensors");
  paused.last_checkpoint_path = dir.path("last.safetensors");
  std::ostringstream log;
  const TrainResult first = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, paused, log);
  EXPECT_FALSE(first.checkpoint_written);
  EXPECT_FALSE(std::filesystem::exists(paused.checkpoint_path));
  EXPECT_EQ(first.checkpoint_line(paused.checkpoint_path),
            "checkpoint: " + paused.checkpoint_path + " not written: no validation yet\n");

  TrainOptions at_the_stop = small_options(2);
  at_the_stop.resume_path = paused.last_checkpoint_path;
  testkit::expect_error(
      [&] { train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, at_the_stop, log); },
      {paused.last_checkpoint_path, "stopped after epoch 2 without validating it", "give --epochs above 2"});

  TrainOptions rest = small_options(4);
  rest.resume_path = paused.last_checkpoint_path;
  rest.checkpoint_path = paused.checkpoint_path;
  const TrainResult second = train_model(*make_model(small_config(ds.n_items), Device::CPU, 1), ds, rest, log);
  EXPECT_TRUE(second.checkpoint_written);
  EXPECT_EQ(second.checkpoint_line(rest.checkpoint_path), "checkpoint: " + rest.checkpoint_path + "\n");
  TrainResult resumed_without_a_new_best;
  resumed_without_a_new_best.best_epoch = 4;
  EXPECT_EQ(resumed_without_a_new_best.checkpoint_line("x.safetensors"),
            "checkpoint: x.safetensors not written: no validation of this run beat the best one before it (epoch 4), "
            "whose parameters are in the --checkpoint of the run that reached it\n");
  EXPECT_EQ(resumed_without_a_new_best.checkpoint_line(""), "");
}

// A metrics record cut short by a full disk (here a file-size limit) is an error, not a file no
// reader can parse.
TEST(RunLog, a_metrics_record_that_cannot_be_written_whole_is_an_error) {
  testkit::TempDir dir;
  const std::string path = dir.path("metrics.jsonl");
  const std::string message = testkit::error_under_file_size_limit(64, [&] {
    append_jsonl_line(path, "{\"kind\": \"epoch\", \"note\": \"" + std::string(200, 'x') + "\"}");
  });
  EXPECT_NE(message.find(path + ": writing a metrics record failed"), std::string::npos) << message;
}

// The ETA counts the steps this invocation has left from where its loop is.
TEST(TrainOptions, steps_left_count_to_the_last_epoch_of_this_invocation) {
  TrainOptions options = small_options(6);
  EXPECT_EQ(steps_left(options, 5, 2, 10), 18);  // 8 of epoch 5, 10 of epoch 6
  options.stop_after_epoch = 5;
  EXPECT_EQ(steps_left(options, 5, 2, 10), 8);
  EXPECT_EQ(last_epoch(options), 5);
  // A stop after the run's last epoch ends the run there.
  options = small_options(2);
  options.stop_after_epoch = 5;
  EXPECT_EQ(last_epoch(options), 2);
  EXPECT_TRUE(trains_epoch(options, TrainingPosition{}, 2));
  EXPECT_FALSE(trains_epoch(options, TrainingPosition{}, 3));
  EXPECT_EQ(steps_left(options, 1, 1, 10), 19);
}
