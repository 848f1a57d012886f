// Runs read back from --metrics files and compared: real training runs (AdamW against Muon, a run
// paused and resumed) and hand-written files for the rules (redone epochs, several runs in a file,
// records from before run records, bad lines).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "muonrec/engine/version.h"
#include "muonrec/models/run_compare.h"
#include "muonrec/models/run_history.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/trainer.h"
#include "test_util.h"
#include "tiny_model_config.h"
#include "train_util.h"

using namespace muonrec;

namespace {

// Epoch records of a metrics file that carry a validation: (epoch, steps, valid NDCG@10).
struct Validated {
  int64_t epoch, steps;
  double ndcg10;
};

std::vector<Validated> validated_epochs(const std::string& path) {
  std::vector<Validated> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line);
    if (record["kind"] == "epoch" && record.contains("valid"))
      out.push_back({record["epoch"].get<int64_t>(), record["steps"].get<int64_t>(),
                     record["valid"]["ndcg10"].get<double>()});
  }
  return out;
}

TrainOptions options_for(const std::string& optimizer, const std::string& metrics_path) {
  TrainOptions o;
  o.epochs = 4;
  o.batch_size = 64;
  o.eval_every = 1;
  o.progress_seconds = 1e9;
  o.optimizer.optimizer = optimizer;
  o.optimizer.adamw.lr = 5e-3f;
  o.metrics_path = metrics_path;
  o.settings = "train.epochs=4\ntrain.optim=\"" + optimizer + "\"\n";
  return o;
}

TrainResult train_small(const data::SequenceDataset& ds, const TrainOptions& options) {
  ModelConfig c = testkit::tiny_model_config("sasrec", ds.n_items, /*max_len=*/20, /*blocks=*/1);
  c.d = 16;
  auto model = make_model(c, Device::CPU, 1);
  std::ostringstream log;
  return train_model(*model, ds, options, log);
}

}  // namespace

TEST(RunCompare, reads_real_runs_and_times_them_to_the_lower_best) {
  testkit::TempDir dir;
  const data::SequenceDataset ds = testkit::small_synthetic_dataset(300, 80, 8, 20);
  const TrainResult adamw = train_small(ds, options_for("adamw", dir.path("adamw.jsonl")));
  const TrainResult muon = train_small(ds, options_for("muon", dir.path("muon.jsonl")));

  std::vector<RunHistory> runs = read_run_histories(dir.path("adamw.jsonl"));
  for (RunHistory& run : read_run_histories(dir.path("muon.jsonl"))) runs.push_back(std::move(run));
  ASSERT_EQ(runs.size(), 2u);
  const TrainResult* results[] = {&adamw, &muon};
  const char* files[] = {"adamw.jsonl", "muon.jsonl"};
  for (size_t r = 0; r < 2; ++r) {
    const RunHistory& run = runs[r];
    EXPECT_EQ(run.name, dir.path(files[r]));
    EXPECT_EQ(run.model, "sasrec");
    EXPECT_EQ(run.optimizer.rfind(r == 0 ? "adamw" : "muon", 0), 0u) << run.optimizer;
    EXPECT_TRUE(run.finished);
    EXPECT_EQ(run.environment, (std::map<std::string, std::string>{{"device", "cpu"},
                                                                    {"events", std::to_string(ds.num_events())},
                                                                    {"items", std::to_string(ds.n_items)},
                                                                    {"muonrec", std::string(version())},
                                                                    {"users", std::to_string(ds.num_users())}}));
    const std::vector<Validated> records = validated_epochs(dir.path(files[r]));
    ASSERT_EQ(run.validations.size(), records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      EXPECT_EQ(run.validations[i].epoch, records[i].epoch);
      EXPECT_EQ(run.validations[i].steps, records[i].steps);
      EXPECT_DOUBLE_EQ(run.validations[i].valid.at("ndcg10"), records[i].ndcg10);
    }
    EXPECT_NEAR(run.train_seconds, results[r]->train_seconds, 1e-6);
    EXPECT_NEAR(run.final_test.at("ndcg10"), results[r]->test_at_best.ndcg10, 1e-6);
  }

  const RunComparison comparison = compare_runs(runs, {});
  const double lower_best = std::min(adamw.best_valid.ndcg10, muon.best_valid.ndcg10);
  EXPECT_NEAR(comparison.target, lower_best, 1e-6);
  for (size_t r = 0; r < 2; ++r) {
    const RunSummary& summary = comparison.runs[r];
    ASSERT_NE(summary.best, nullptr);
    EXPECT_EQ(summary.best->epoch, results[r]->best_epoch);
    // The first validation at or above the target, read off the file.
    ASSERT_NE(summary.reached, nullptr);
    for (const Validated& v : validated_epochs(dir.path(files[r]))) {
      if (v.ndcg10 < comparison.target) continue;
      EXPECT_EQ(summary.reached->epoch, v.epoch);
      EXPECT_EQ(summary.reached->steps, v.steps);
      break;
    }
    EXPECT_EQ(summary.differences, r == 0 ? "optim=adamw" : "optim=muon");
  }

  const std::string table = format_comparison(comparison);
  EXPECT_NE(table.find("best valid NDCG@10"), std::string::npos) << table;
  EXPECT_NE(table.find(fmt::format("steps to {:.6f}", lower_best)), std::string::npos) << table;
  const double change = 100.0 * (double(comparison.runs[1].reached->steps) / comparison.runs[0].reached->steps - 1);
  EXPECT_NE(table.find(fmt::format("{:+.1f}%", change)), std::string::npos) << table;
  // The same rows as Markdown: a header, its separator, a line per run.
  const std::string markdown = format_comparison(comparison, /*markdown=*/true);
  EXPECT_EQ(markdown.rfind("| run | model | optimizer | best valid NDCG@10 |", 0), 0u) << markdown;
  EXPECT_NE(markdown.find("\n|---|---|"), std::string::npos) << markdown;
  EXPECT_EQ(std::count(markdown.begin(), markdown.end(), '\n'), 4) << markdown;
  EXPECT_NE(markdown.find(fmt::format("| {:+.1f}% |", change)), std::string::npos) << markdown;
  // A '|' inside a cell (a regex parameter policy) is escaped: every line keeps its 11 columns.
  RunHistory piped = *comparison.runs[0].run;
  piped.optimizer = "muon (policy regex:blocks\\.0\\.(qkv|fc1)\\.weight)";
  RunComparison with_pipe = comparison;
  with_pipe.runs[0].run = &piped;
  const std::string escaped = format_comparison(with_pipe, /*markdown=*/true);
  EXPECT_NE(escaped.find("(qkv\\|fc1)"), std::string::npos) << escaped;
  std::istringstream lines(escaped);
  for (std::string line; std::getline(lines, line);) {
    size_t separators = 0;
    for (size_t i = 0; i < line.size(); ++i) separators += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    EXPECT_EQ(separators, 12u) << line;
  }

  // Another metric and an explicit target above every run: nobody reaches it.
  CompareOptions high;
  high.metric = "hr10";
  high.target = 1.5;
  const RunComparison unreachable = compare_runs(runs, high);
  EXPECT_EQ(unreachable.runs[0].reached, nullptr);
  EXPECT_NE(format_comparison(unreachable).find("not reached"), std::string::npos);
  testkit::expect_error([&] { compare_runs(runs, {"ndcg11"}); }, {"'ndcg11'", "ndcg10", "hr10"});
}

TEST(RunCompare, settings_differ_by_value_not_by_spelling_or_by_being_typed) {
  auto run_with = [](const std::string& settings, const std::string& all_settings) {
    RunHistory run;
    run.name = "run";
    run.model = "sasrec";
    run.optimizer = "adamw";
    run.settings = settings;
    run.all_settings = all_settings;
    ValidationPoint point;
    point.epoch = 1;
    point.steps = 10;
    point.valid["ndcg10"] = 0.1;
    run.validations.push_back(point);
    return run;
  };
  // The default typed out, the same number spelt otherwise, and another value.
  std::vector<RunHistory> runs = {run_with("", "train.lr=0.001\ntrain.d=64\n"),
                                  run_with("train.lr=1e-3\n", "train.lr=1e-3\ntrain.d=64\n"),
                                  run_with("train.lr=0.002\n", "train.lr=0.002\ntrain.d=64\n")};
  // Seeds 2^63 - 1 and 2^63 - 2 are one double, but two seeds.
  runs[0].all_settings += "train.seed=9223372036854775807\n";
  runs[1].all_settings += "train.seed=9223372036854775806\n";
  runs[2].all_settings += "train.seed=9223372036854775806\n";
  RunComparison comparison = compare_runs(runs, {});
  EXPECT_EQ(comparison.runs[0].differences, "lr=0.001 seed=9223372036854775807");
  EXPECT_EQ(comparison.runs[1].differences, "lr=0.001 seed=9223372036854775806");
  EXPECT_EQ(comparison.runs[2].differences, "lr=0.002 seed=9223372036854775806");
  // A record from before every setting was kept: the typed flags alone, as before.
  runs[0].all_settings.clear();
  comparison = compare_runs(runs, {});
  EXPECT_EQ(comparison.runs[0].differences, "");
  EXPECT_EQ(comparison.runs[1].differences, "lr=0.001");
}

TEST(RunCompare, where_runs_ran_tells_them_apart_where_every_record_says) {
  RunHistory small, large;
  for (RunHistory* run : {&small, &large}) {
    run->all_settings = "train.data=\"d.txt\"\n";
    ValidationPoint point;
    point.epoch = 1;
    point.valid["ndcg10"] = 0.1;
    run->validations.push_back(point);
  }
  // One data path that held other data between the runs, and a run resumed on another device.
  small.environment = {{"users", "300"}, {"items", "79"}, {"device", "cpu"}, {"muonrec", "0.9.0"}};
  large.environment = {{"users", "150"}, {"items", "79"}, {"device", "cuda,cpu"}, {"muonrec", "0.9.0"}};
  RunComparison comparison = compare_runs({small, large}, {});
  EXPECT_EQ(comparison.runs[0].differences, "device=cpu users=300");
  EXPECT_EQ(comparison.runs[1].differences, "device=cuda,cpu users=150");
  // A record from before a field existed: that field is not compared.
  large.environment.erase("users");
  comparison = compare_runs({small, large}, {});
  EXPECT_EQ(comparison.runs[0].differences, "device=cpu");
}

TEST(RunCompare, a_target_copied_from_the_table_is_reached_by_the_run_showing_it) {
  RunHistory run;
  for (int64_t epoch : {1, 2}) {
    ValidationPoint point;
    point.epoch = epoch;
    point.steps = 10 * epoch;
    point.valid["ndcg10"] = epoch == 1 ? 0.1 : 0.137682;  // 0.1377 to 4 decimals, short of it
    run.validations.push_back(point);
  }
  const std::string table = format_comparison(compare_runs({run}, {}), /*markdown=*/true);
  EXPECT_NE(table.find("| steps to 0.137682 |"), std::string::npos) << table;
  EXPECT_NE(table.find("| 0.137682 | 2 | 20 |"), std::string::npos) << table;  // the best, its epoch and step
  CompareOptions copied;
  copied.target = 0.137682;
  EXPECT_NE(compare_runs({run}, copied).runs[0].reached, nullptr);
}

// The best of tied validations is the first (the epoch training kept), and "vs first" is the change in
// steps to the target from the first run's: 80 steps after 100 is -20.0%.
TEST(RunCompare, the_first_of_tied_bests_and_the_change_in_steps) {
  auto run_reaching = [](int64_t first_steps) {
    RunHistory run;
    for (int64_t epoch : {1, 2, 3}) {
      ValidationPoint point;
      point.epoch = epoch;
      point.steps = first_steps * epoch;
      point.valid["ndcg10"] = epoch == 1 ? 0.1 : 0.2;
      run.validations.push_back(point);
    }
    return run;
  };
  const std::vector<RunHistory> runs = {run_reaching(50), run_reaching(40)};
  const RunComparison comparison = compare_runs(runs, {});
  EXPECT_EQ(comparison.runs[0].best->epoch, 2);
  EXPECT_EQ(comparison.runs[1].reached->steps, 80);
  EXPECT_NE(format_comparison(comparison, /*markdown=*/true).find("| 80 (epoch 2, 0.0 s) | -20.0% |"),
            std::string::npos)
      << format_comparison(comparison, true);
  // A finished run chose its best epoch by the unrounded NDCG@10: where the records' 6 decimals tie,
  // its choice (epoch 3, say 0.2000004 against 0.2000001) stands, and its test metrics with it.
  std::vector<RunHistory> finished = {run_reaching(50)};
  finished[0].finished = true;
  finished[0].final_test_epoch = 3;
  finished[0].final_test["ndcg10"] = 0.15;
  EXPECT_EQ(compare_runs(finished, {}).runs[0].best->epoch, 3);
  finished[0].final_test_epoch = 1;  // not a tie: the records' best stands
  EXPECT_EQ(compare_runs(finished, {}).runs[0].best->epoch, 2);
  finished[0].final_test_epoch = 3;
  CompareOptions hr;
  hr.metric = "hr10";
  for (ValidationPoint& point : finished[0].validations) point.valid["hr10"] = 0.5;
  EXPECT_EQ(compare_runs(finished, hr).runs[0].best->epoch, 1);  // another metric: the first of its ties
}

TEST(RunCompare, a_resumed_run_reads_as_the_uninterrupted_one) {
  testkit::TempDir dir;
  const data::SequenceDataset ds = testkit::small_synthetic_dataset(300, 80, 8, 20);
  train_small(ds, options_for("adamw", dir.path("whole.jsonl")));
  TrainOptions first = options_for("adamw", dir.path("paused.jsonl"));
  first.last_checkpoint_path = dir.path("state.safetensors");
  first.stop_after_epoch = 2;
  train_small(ds, first);
  TrainOptions rest = options_for("adamw", dir.path("paused.jsonl"));
  rest.resume_path = first.last_checkpoint_path;
  train_small(ds, rest);

  const std::vector<RunHistory> whole = read_run_histories(dir.path("whole.jsonl"));
  const std::vector<RunHistory> paused = read_run_histories(dir.path("paused.jsonl"));
  ASSERT_EQ(paused.size(), 1u);
  ASSERT_EQ(paused[0].validations.size(), whole[0].validations.size());
  for (size_t i = 0; i < whole[0].validations.size(); ++i) {
    EXPECT_EQ(paused[0].validations[i].epoch, whole[0].validations[i].epoch);
    EXPECT_EQ(paused[0].validations[i].steps, whole[0].validations[i].steps);
    EXPECT_EQ(paused[0].validations[i].valid, whole[0].validations[i].valid);
  }
  EXPECT_TRUE(paused[0].finished);
  EXPECT_EQ(paused[0].final_test, whole[0].final_test);
  // One result record: the paused invocation leaves its result to the one that finishes the run.
  std::ifstream lines(dir.path("paused.jsonl"));
  int64_t results = 0;
  for (std::string line; std::getline(lines, line);) results += line.find(R"("kind":"result")") != std::string::npos;
  EXPECT_EQ(results, 1);
}

TEST(RunHistory, redone_epochs_replace_earlier_records_and_fresh_runs_start_anew) {
  testkit::TempDir dir;
  // HR@10 peaks at epoch 2, NDCG@10 at epoch 3.
  auto epoch = [](int e, int steps, double seconds, double ndcg) {
    return fmt::format(R"({{"kind":"epoch","epoch":{},"steps":{},"seconds":{},"loss":1,)"
                       R"("valid":{{"ndcg10":{},"hr10":{},"users":9}}}})",
                       e, steps, seconds, ndcg, e == 2 ? 0.9 : 0.5);
  };
  const std::string run = R"({"kind":"run","model":{"kind":"hstu"},"optimizer":"muon","epochs":3,"resumed_from":""})";
  const std::string resumed = R"({"kind":"run","model":{"kind":"hstu"},"optimizer":"muon","epochs":3,)"
                              R"("resumed_from":"s.safetensors"})";
  // Epoch 2 was recorded, but the state saved was epoch 1's: the resumed invocation redoes epoch 2.
  dir.write("m.jsonl", run + "\n" + epoch(1, 10, 1.0, 0.1) + "\n" + epoch(2, 20, 1.0, 0.2) + "\n\n" + resumed + "\n" +
                           epoch(2, 20, 2.0, 0.25) + "\n" + epoch(3, 30, 2.0, 0.3) + "\n" +
                           R"({"kind":"result","best_epoch":3,"test":{"ndcg10":0.28,"hr10":0.6}})" + "\n" + run + "\n" +
                           epoch(1, 10, 1.0, 0.15) + "\n");
  const std::vector<RunHistory> runs = read_run_histories(dir.path("m.jsonl"));
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].name, dir.path("m.jsonl") + "#1");
  EXPECT_EQ(runs[1].name, dir.path("m.jsonl") + "#2");
  ASSERT_EQ(runs[0].validations.size(), 3u);
  EXPECT_DOUBLE_EQ(runs[0].validations[1].valid.at("ndcg10"), 0.25);
  EXPECT_EQ(runs[0].validations[1].valid.count("users"), 0u);
  EXPECT_DOUBLE_EQ(runs[0].validations[1].train_seconds, 3.0);  // epoch 1, and the redone epoch 2
  EXPECT_DOUBLE_EQ(runs[0].train_seconds, 5.0);
  EXPECT_TRUE(runs[0].finished);
  EXPECT_DOUBLE_EQ(runs[0].final_test.at("ndcg10"), 0.28);
  EXPECT_EQ(runs[0].final_test_epoch, 3);
  EXPECT_EQ(runs[0].model, "hstu");
  EXPECT_FALSE(runs[1].finished);
  ASSERT_EQ(runs[1].validations.size(), 1u);

  // The second run's best (0.15) is the target: the first run reaches it at epoch 2 (step 20).
  const RunComparison comparison = compare_runs(runs, {});
  EXPECT_DOUBLE_EQ(comparison.target, 0.15);
  EXPECT_EQ(comparison.runs[0].reached->steps, 20);
  EXPECT_EQ(comparison.runs[0].best->epoch, 3);
  EXPECT_EQ(comparison.runs[1].reached->steps, 10);
  // The result record's test belongs to epoch 3: the table shows it beside NDCG@10's best epoch, not
  // beside HR@10's (epoch 2, with no test of its own); the run still training says so.
  const std::string by_ndcg = format_comparison(comparison, /*markdown=*/true);
  EXPECT_NE(by_ndcg.find("#1 | hstu | muon | 0.300000 | 3 | 30 | 0.2800 |"), std::string::npos) << by_ndcg;
  EXPECT_NE(by_ndcg.find("#2 (unfinished) |"), std::string::npos) << by_ndcg;
  CompareOptions hr10;
  hr10.metric = "hr10";
  const std::string by_hr = format_comparison(compare_runs(runs, hr10), /*markdown=*/true);
  EXPECT_NE(by_hr.find("#1 | hstu | muon | 0.900000 | 2 | 20 | - |"), std::string::npos) << by_hr;

  // Records from before run records existed form one run of unknown identity.
  dir.write("old.jsonl", epoch(1, 10, 1.0, 0.1) + "\n");
  const std::vector<RunHistory> old = read_run_histories(dir.path("old.jsonl"));
  ASSERT_EQ(old.size(), 1u);
  EXPECT_EQ(old[0].model, "?");
  EXPECT_EQ(old[0].name, dir.path("old.jsonl"));
}

// Two runs share a metrics file and one pauses: its resumed invocation joins the run that wrote the
// state it resumed from, not the run written just before it. A state no run of the file wrote
// starts a run of its own.
TEST(RunHistory, a_resumed_invocation_joins_the_run_that_wrote_its_state) {
  testkit::TempDir dir;
  auto run = [](const std::string& outputs) {
    return R"({"kind":"run","model":{"kind":"sasrec"},"optimizer":"adamw","epochs":2,"cwd":"/work",)" + outputs +
           "}\n";
  };
  auto epoch = [](int e, double ndcg) {
    return fmt::format(R"({{"kind":"epoch","epoch":{},"steps":{},"seconds":1,"valid":{{"ndcg10":{}}}}})", e, 10 * e,
                       ndcg) + "\n";
  };
  auto result = [](int best_epoch, double ndcg) {
    return fmt::format(R"({{"kind":"result","best_epoch":{},"test":{{"ndcg10":{}}}}})", best_epoch, ndcg) + "\n";
  };
  const std::string paused = run(R"("resumed_from":"","save_last":"runs/a.state","checkpoint":"")");
  const std::string other = run(R"("resumed_from":"","save_last":"","checkpoint":"/work/runs/b.safetensors")");
  const std::string resumed = run(R"("resumed_from":"/work/runs/./a.state","save_last":"runs/a.state",)"
                                  R"("checkpoint":"")");
  const std::string elsewhere = run(R"("resumed_from":"/elsewhere/c.state","save_last":"","checkpoint":"")");
  dir.write("m.jsonl", paused + epoch(1, 0.1) + other + epoch(1, 0.3) + epoch(2, 0.4) + result(2, 0.35) + resumed +
                           epoch(2, 0.2) + result(2, 0.15) + elsewhere + epoch(2, 0.5));
  const std::vector<RunHistory> runs = read_run_histories(dir.path("m.jsonl"));
  ASSERT_EQ(runs.size(), 3u);
  ASSERT_EQ(runs[0].validations.size(), 2u);
  EXPECT_DOUBLE_EQ(runs[0].validations[1].valid.at("ndcg10"), 0.2);
  EXPECT_TRUE(runs[0].finished);
  EXPECT_DOUBLE_EQ(runs[0].final_test.at("ndcg10"), 0.15);
  ASSERT_EQ(runs[1].validations.size(), 2u);
  EXPECT_DOUBLE_EQ(runs[1].validations[1].valid.at("ndcg10"), 0.4);
  EXPECT_DOUBLE_EQ(runs[1].final_test.at("ndcg10"), 0.35);
  ASSERT_EQ(runs[2].validations.size(), 1u);
  EXPECT_EQ(runs[2].validations[0].epoch, 2);
  EXPECT_FALSE(runs[2].finished);

  // A fresh run that writes the same state file overwrites the earlier run's: a resume continues it.
  const std::string restarted = run(R"("resumed_from":"","save_last":"runs/a.state","checkpoint":"")");
  dir.write("twice.jsonl", paused + epoch(1, 0.1) + restarted + epoch(1, 0.3) + resumed + epoch(2, 0.4) +
                               result(2, 0.35));
  const std::vector<RunHistory> twice = read_run_histories(dir.path("twice.jsonl"));
  ASSERT_EQ(twice.size(), 2u);
  EXPECT_EQ(twice[0].validations.size(), 1u);
  EXPECT_FALSE(twice[0].finished);
  ASSERT_EQ(twice[1].validations.size(), 2u);
  EXPECT_DOUBLE_EQ(twice[1].validations[0].valid.at("ndcg10"), 0.3);
  EXPECT_DOUBLE_EQ(twice[1].validations[1].valid.at("ndcg10"), 0.4);
  EXPECT_TRUE(twice[1].finished);
}

// A record appended to a file whose last record was cut short stands on a line of its own, and the
// reader keeps the runs around the cut line.
TEST(RunHistory, a_record_after_a_cut_one_starts_a_line_of_its_own) {
  testkit::TempDir dir;
  const std::string path = dir.write("cut.jsonl", R"({"kind":"run","model":{},"optimizer":"adamw"})"
                                                  "\n{\"kind\":\"epoch\",\"epo");
  append_jsonl_line(path, R"({"kind":"run","model":{},"optimizer":"muon"})");
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.substr(text.rfind("\"epo")), "\"epo\n{\"kind\":\"run\",\"model\":{},\"optimizer\":\"muon\"}\n");
  std::ostringstream notes;
  const std::vector<RunHistory> runs = read_run_histories(path, &notes);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].optimizer, "muon");
  EXPECT_NE(notes.str().find("line 2"), std::string::npos) << notes.str();
  // A whole last line gets no newline added.
  append_jsonl_line(path, "{}");
  std::ifstream again(path);
  const std::string after((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, text + "{}\n");
}

TEST(RunHistory, bad_files_are_refused_naming_file_and_line) {
  testkit::TempDir dir;
  dir.write("broken.jsonl", R"({"kind":"run","model":{},"optimizer":"adamw"})" "\n{\"kind\": \"epo\n");
  testkit::expect_error([&] { read_run_histories(dir.path("broken.jsonl")); }, {"broken.jsonl, line 2", "JSON"});
  dir.write("no_steps.jsonl", R"({"kind":"epoch","epoch":1,"seconds":1,"valid":{"ndcg10":0.1}})" "\n");
  testkit::expect_error([&] { read_run_histories(dir.path("no_steps.jsonl")); },
                        {"no_steps.jsonl, line 1", "'steps'"});
  dir.write("text.jsonl", R"({"kind":"epoch","epoch":"one","seconds":1})" "\n");
  testkit::expect_error([&] { read_run_histories(dir.path("text.jsonl")); }, {"line 1", "'epoch' is not a number"});
  // Values no run writes: a metric as text, a fractional epoch, negative seconds or steps.
  const std::string epoch = R"({"kind":"epoch","epoch":1,"seconds":1,"steps":3,"valid":{"ndcg10":0.5}})";
  auto expect_bad_epoch = [&](const std::string& from, const std::string& to, const std::string& message) {
    std::string record = epoch;
    record.replace(record.find(from), from.size(), to);
    dir.write("bad_epoch.jsonl", record + "\n");
    testkit::expect_error([&] { read_run_histories(dir.path("bad_epoch.jsonl")); }, {"line 1", message});
  };
  expect_bad_epoch("0.5", "\"0.5\"", "'valid.ndcg10' is not a number");
  expect_bad_epoch("\"epoch\":1", "\"epoch\":1.7", "'epoch' is 1.7, not a whole number >= 1");
  expect_bad_epoch("\"seconds\":1", "\"seconds\":-5", "'seconds' is -5, not a number >= 0");
  expect_bad_epoch("\"steps\":3", "\"steps\":-3", "'steps' is -3, not a whole number >= 0");
  // Given a stream for notes, a line that is no JSON object (cut short) is skipped, naming it there.
  std::ostringstream notes;
  const std::vector<RunHistory> kept = read_run_histories(dir.path("broken.jsonl"), &notes);
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].optimizer, "adamw");
  EXPECT_EQ(notes.str(), dir.path("broken.jsonl") + ", line 2: not a JSON object (a record cut short?), skipped\n");
  dir.write("empty.jsonl", "\n");
  testkit::expect_error([&] { read_run_histories(dir.path("empty.jsonl")); }, {"empty.jsonl", "no training records"});
  testkit::expect_error([&] { read_run_histories(dir.path("missing.jsonl")); }, {"cannot open", "missing.jsonl"});
}
