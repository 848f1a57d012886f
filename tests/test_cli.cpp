// The muonrec command line as users run it: the built binary, its exit codes and what it prints.
// Train -> eval -> recommend -> info on a checkpoint, the run record of --metrics read back with
// --config, --patience, TIGER end to end, and the errors for bad input. CPU only, small synthetic
// data (each run takes well under a second).
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_util.h"

namespace {

struct CliRun {
  int exit_code = -1;
  std::string output;  // standard output and standard error, interleaved
};

// Runs `muonrec ARGS` through the shell (ARGS is shell text).
CliRun run_cli(const std::string& args) {
  const std::string command = std::string("'") + MUONREC_CLI_PATH + "' " + args + " 2>&1";
  CliRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return run;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) run.output.append(buffer, n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

// The text after `prefix` on the first line that starts with it ("" when none does).
std::string line_after(const std::string& output, const std::string& prefix) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  return "";
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) records.push_back(nlohmann::json::parse(line));
  return records;
}

// The data of every run below; eval and recommend must read the same.
const std::string kData = "--synthetic-users 300 --synthetic-items 80";
const std::string kSmallSasrec = kData + " --maxlen 20 --d 16 --epochs 2 --eval-every 1 --dropout 0.1 --device cpu";

}  // namespace

TEST(Cli, TrainThenEvalRecommendAndInfoFromTheCheckpoint) {
  muonrec::testkit::TempDir dir;
  const std::string checkpoint = dir.path("run.safetensors"), metrics = dir.path("run.jsonl");
  const CliRun train = run_cli("train " + kSmallSasrec + " --checkpoint " + checkpoint + " --metrics " + metrics);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string test_line = line_after(train.output, "test at that epoch:");
  ASSERT_NE(test_line.find("NDCG@10"), std::string::npos) << train.output;

  // eval reproduces the test metrics of the best epoch to the printed digit.
  // --batch: users decoded together, which changes no result.
  const CliRun eval = run_cli("eval " + kData + " --device cpu --batch 7 --checkpoint " + checkpoint);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find("test (" + checkpoint + "): " + test_line.substr(test_line.find("HR@10"))),
            std::string::npos)
      << "train: " << test_line << "\neval: " << eval.output;

  // recommend: "user rank item score" lines, k of them, ranks 1..k.
  const CliRun recommend = run_cli("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --k 3");
  ASSERT_EQ(recommend.exit_code, 0) << recommend.output;
  int rank = 0;
  std::istringstream lines(recommend.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("1\t", 0) != 0) continue;
    ++rank;
    EXPECT_EQ(line.rfind("1\t" + std::to_string(rank) + "\t", 0), 0u) << line;
  }
  EXPECT_EQ(rank, 3) << recommend.output;

  // The metrics file opens with the run record; the checkpoint names the command that wrote it.
  const std::vector<nlohmann::json> records = read_jsonl(metrics);
  ASSERT_EQ(records.size(), 4u);  // run, 2 epochs, result
  EXPECT_EQ(records[0].at("kind"), "run");
  EXPECT_EQ(records[0].at("model").at("d"), 16);
  EXPECT_EQ(records[0].at("data").at("users"), 300);
  EXPECT_EQ(records[0].at("device"), "cpu");
  EXPECT_NE(records[0].at("command").get<std::string>().find("train --synthetic-users 300"), std::string::npos);
  EXPECT_NE(records[0].at("settings").get<std::string>().find("train.d=16"), std::string::npos);
  const CliRun info = run_cli("info --checkpoint " + checkpoint);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("model: sasrec "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find(" d=16 "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("test at that epoch: " + test_line.substr(test_line.find("HR@10"))), std::string::npos)
      << info.output;
  EXPECT_EQ(line_after(info.output, "command: "), records[0].at("command").get<std::string>()) << info.output;
}

// The "settings" of a run record, saved as a file, rerun the same run (same test metrics on the
// CPU, where training is deterministic); a flag on the command line wins over the file, and a key
// no flag has is refused, naming it.
TEST(Cli, ConfigReadsTheSettingsOfARunRecordBack) {
  muonrec::testkit::TempDir dir;
  const std::string metrics = dir.path("first.jsonl");
  const CliRun first = run_cli("train " + kSmallSasrec + " --optim muon --muon-no-nesterov --metrics " + metrics);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string settings = read_jsonl(metrics).at(0).at("settings");
  EXPECT_NE(settings.find("train.muon-no-nesterov=true"), std::string::npos) << settings;
  const std::string config = dir.write("run.toml", settings);

  const std::string again_metrics = dir.path("again.jsonl");
  const CliRun again = run_cli("train --config " + config + " --metrics " + again_metrics);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(line_after(again.output, "test at that epoch:"), line_after(first.output, "test at that epoch:"))
      << again.output;
  EXPECT_NE(again.output.find("optimizer: Muon lr=0.02 momentum=0.95 nesterov=false"), std::string::npos) << again.output;
  // The settings leave out where outputs went (--metrics here), so rerunning them cannot append to
  // the first run's files.
  EXPECT_EQ(settings.find("metrics"), std::string::npos) << settings;
  EXPECT_EQ(read_jsonl(again_metrics).at(0).at("settings"), settings);

  const CliRun shorter = run_cli("train --config " + config + " --epochs 1 --metrics " + dir.path("short.jsonl"));
  ASSERT_EQ(shorter.exit_code, 0) << shorter.output;
  EXPECT_NE(shorter.output.find("for 1 epochs"), std::string::npos) << shorter.output;

  const std::string bad = dir.write("bad.toml", settings + "train.epocs=3\n");
  const CliRun refused = run_cli("train --config " + bad);
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_NE(refused.output.find("epocs"), std::string::npos) << refused.output;
}

TEST(Cli, PatienceEndsTheRunEarly) {
  // A learning rate of 0: no validation after the first improves on it (the trainer tests cover
  // real trajectories; this one checks the flag and the lines it prints).
  const CliRun run = run_cli("train " + kData + " --maxlen 20 --d 16 --epochs 6 --eval-every 1 --lr 0 --patience 2 "
                             "--device cpu");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("early stop after epoch 3: validation NDCG@10 has not improved for 2 validations"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(line_after(run.output, "best validation epoch ").rfind("1:", 0), 0u) << run.output;
  EXPECT_EQ(run.output.find("epoch 4 validation"), std::string::npos) << run.output;
}

TEST(Cli, TigerTrainsAndItsCheckpointEvaluatesTheSame) {
  muonrec::testkit::TempDir dir;
  const std::string checkpoint = dir.path("tiger.safetensors");
  const CliRun train = run_cli("train --model tiger " + kData +
                               " --item-vectors cooccurrence --sid-levels 2 --sid-codebook 8 --sid-width 8 --d 16 "
                               "--epochs 2 --beam 5 --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string test_line = line_after(train.output, "test at that epoch:");
  ASSERT_NE(test_line.find("NDCG@10"), std::string::npos) << train.output;
  const CliRun eval = run_cli("eval " + kData + " --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find(test_line.substr(test_line.find("HR@10"))), std::string::npos)
      << "train: " << test_line << "\neval: " << eval.output;
  const CliRun info = run_cli("info --checkpoint " + checkpoint);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("model: tiger "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("written by: muonrec "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("semantic-ID tokenizer"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("command: "), std::string::npos) << info.output;
}

// Two runs' metrics files side by side: the table names both, the setting that differs, and the
// steps each took to the common target; an unknown metric is refused.
TEST(Cli, CompareSetsRunsSideBySide) {
  muonrec::testkit::TempDir dir;
  for (const std::string optimizer : {"adamw", "muon"}) {
    const CliRun run = run_cli("train " + kSmallSasrec + " --optim " + optimizer + " --metrics " +
                               dir.path(optimizer + ".jsonl"));
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  const CliRun compare = run_cli("compare " + dir.path("adamw.jsonl") + " " + dir.path("muon.jsonl"));
  ASSERT_EQ(compare.exit_code, 0) << compare.output;
  EXPECT_NE(compare.output.find("best valid NDCG@10"), std::string::npos) << compare.output;
  EXPECT_NE(compare.output.find("steps to "), std::string::npos) << compare.output;
  EXPECT_NE(line_after(compare.output, dir.path("adamw.jsonl")).find("optim=adamw"), std::string::npos)
      << compare.output;
  EXPECT_NE(line_after(compare.output, dir.path("muon.jsonl")).find("optim=muon"), std::string::npos)
      << compare.output;
  const CliRun unknown = run_cli("compare " + dir.path("adamw.jsonl") + " --metric ndcg11");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.output.find("no validation records with the metric 'ndcg11'"), std::string::npos)
      << unknown.output;
}

// Bad input ends with exit code 1 (CLI11's own codes for flag errors) and one line that says what
// is wrong and where.
TEST(Cli, BadInputFailsWithAMessage) {
  muonrec::testkit::TempDir dir;
  const CliRun missing = run_cli("train --data " + dir.path("absent.txt") + " --device cpu");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("muonrec: error:"), std::string::npos) << missing.output;
  EXPECT_NE(missing.output.find(dir.path("absent.txt")), std::string::npos) << missing.output;

  const std::string broken = dir.write("broken.txt", "1 1\n1 2\n1 x3\n");
  const CliRun unreadable = run_cli("train --data " + broken + " --format pairs --device cpu");
  EXPECT_EQ(unreadable.exit_code, 1);
  EXPECT_NE(unreadable.output.find(broken + ", line 3"), std::string::npos) << unreadable.output;

  const CliRun model = run_cli("train " + kData + " --model gru4rec --device cpu");
  EXPECT_EQ(model.exit_code, 1);
  EXPECT_NE(model.output.find("unknown model 'gru4rec' (available: sasrec, bert4rec, hstu, tiger)"), std::string::npos)
      << model.output;

  const CliRun flag = run_cli("train --bogus 3");
  EXPECT_NE(flag.exit_code, 0);
  EXPECT_NE(flag.output.find("--bogus"), std::string::npos) << flag.output;

  const CliRun negative = run_cli("train --patience -1");
  EXPECT_NE(negative.exit_code, 0);
  EXPECT_NE(negative.output.find("--patience"), std::string::npos) << negative.output;

  const CliRun stop = run_cli("train " + kData + " --epochs 3 --stop-after-epoch 1 --device cpu");
  EXPECT_EQ(stop.exit_code, 1);
  EXPECT_NE(stop.output.find("add --save-last"), std::string::npos) << stop.output;

  // --config carries train flags: eval and the others refuse it rather than take its data or
  // filtering silently.
  const std::string config = dir.write("run.toml", "train.no-filter-seen=true\n");
  const CliRun eval_config = run_cli("--config " + config + " eval --checkpoint x.safetensors");
  EXPECT_EQ(eval_config.exit_code, 1);
  EXPECT_NE(eval_config.output.find("--config applies to 'muonrec train' only"), std::string::npos)
      << eval_config.output;

  // Data flags that would go unheard.
  const CliRun format = run_cli("baseline --format bogus");
  EXPECT_EQ(format.exit_code, 1);
  EXPECT_NE(format.output.find("unknown data format 'bogus'"), std::string::npos) << format.output;
  const CliRun synthetic = run_cli("baseline --data " + dir.write("pairs.txt", "1 1\n1 2\n1 3\n") +
                                   " --synthetic-users 5");
  EXPECT_EQ(synthetic.exit_code, 1);
  EXPECT_NE(synthetic.output.find("--synthetic-users applies to --data synthetic only"), std::string::npos)
      << synthetic.output;
  const CliRun unread = run_cli("train --model hstu --sid-levels 2");
  EXPECT_EQ(unread.exit_code, 1);
  EXPECT_NE(unread.output.find("--sid-levels applies to --model tiger only"), std::string::npos) << unread.output;
  const CliRun tiger_window = run_cli("train --model tiger --maxlen 50");
  EXPECT_EQ(tiger_window.exit_code, 1);
  EXPECT_NE(tiger_window.output.find("--maxlen applies to --model sasrec, bert4rec or hstu only"), std::string::npos)
      << tiger_window.output;
  const CliRun synthetic_format = run_cli("baseline --format pairs");
  EXPECT_EQ(synthetic_format.exit_code, 1);
  EXPECT_NE(synthetic_format.output.find("--format applies to data files only"), std::string::npos)
      << synthetic_format.output;
  const CliRun both_filters = run_cli("baseline --no-filter-seen --filter-seen-last 3");
  EXPECT_NE(both_filters.exit_code, 0);
  EXPECT_NE(both_filters.output.find("excludes"), std::string::npos) << both_filters.output;
  const CliRun batch = run_cli("eval --checkpoint x.safetensors --batch 0");
  EXPECT_EQ(batch.exit_code, 1);
  EXPECT_NE(batch.output.find("--batch must be positive"), std::string::npos) << batch.output;

  const CliRun not_checkpoint = run_cli("info --checkpoint " + dir.write("notes.txt", "hello"));
  EXPECT_EQ(not_checkpoint.exit_code, 1);
  EXPECT_NE(not_checkpoint.output.find("notes.txt: not a safetensors file"), std::string::npos)
      << not_checkpoint.output;
}
