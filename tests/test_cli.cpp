// The muonrec command line as users run it: the built binary, its exit codes and what it prints.
// Train -> eval -> recommend -> info on a checkpoint, the run record of --metrics read back with
// --config, --patience, TIGER end to end, and the errors for bad input. CPU only, small synthetic
// data (each run takes well under a second).
#include <sys/wait.h>

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "muonrec/data/text_fields.h"
#include "muonrec/engine/safetensors.h"
#include "test_util.h"

namespace {

struct CliRun {
  int exit_code = -1;
  std::string output;  // standard output and standard error, interleaved
};

// Runs `muonrec ARGS` through the shell (ARGS is shell text), with `environment` ("NAME=value ...")
// set for it.
CliRun run_cli(const std::string& args, const std::string& environment = "") {
  const std::string command = environment + " '" + MUONREC_CLI_PATH + "' " + args + " 2>&1";
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

// `muonrec ARGS` fails saying `message`: exit code 1 for an error while running, any non-zero code
// for CLI11's flag errors (flag_error).
void expect_refused(const std::string& args, const std::string& message, bool flag_error = false) {
  const CliRun run = run_cli(args);
  if (flag_error) {
    EXPECT_NE(run.exit_code, 0) << args;
  } else {
    EXPECT_EQ(run.exit_code, 1) << args;
  }
  EXPECT_NE(run.output.find(message), std::string::npos) << args << "\n" << run.output;
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
// A 'user item' file of 40 users with `events` events each over 30 items.
std::string small_pairs(int events) {
  std::string pairs;
  for (int user = 1; user <= 40; ++user)
    for (int step = 0; step < events; ++step) pairs += fmt::format("{} {}\n", user, 1 + (user * 7 + step * 3) % 30);
  return pairs;
}

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
  // No --ff: the feed-forward width is d, and the model line says the width used.
  EXPECT_NE(line_after(train.output, "model: sasrec ").find(" ff=16 "), std::string::npos) << train.output;

  // eval reproduces the test metrics of the best epoch to the printed digit.
  // --batch: users decoded together, which changes no result.
  const CliRun eval = run_cli("eval " + kData + " --device cpu --batch 7 --checkpoint " + checkpoint);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find("test (" + checkpoint + "): " + test_line.substr(test_line.find("HR@10"))),
            std::string::npos)
      << "train: " << test_line << "\neval: " << eval.output;

  // So does a BERT4Rec checkpoint (whose item table holds a [MASK] row past the catalogue).
  const std::string bert = dir.path("bert.safetensors");
  const CliRun bert_train = run_cli("train --model bert4rec " + kData + " --maxlen 20 --d 16 --epochs 1 --device cpu "
                                    "--checkpoint " + bert);
  ASSERT_EQ(bert_train.exit_code, 0) << bert_train.output;
  const std::string bert_test = line_after(bert_train.output, "test at that epoch:");
  const CliRun bert_eval = run_cli("eval " + kData + " --device cpu --checkpoint " + bert);
  EXPECT_NE(bert_eval.output.find("test (" + bert + "): " + bert_test.substr(bert_test.find("HR@10"))),
            std::string::npos)
      << "train: " << bert_test << "\neval: " << bert_eval.output;

  // recommend: "user rank item score" lines, k of them, ranks 1..k.
  const CliRun recommend =
      run_cli("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --k 3");
  ASSERT_EQ(recommend.exit_code, 0) << recommend.output;
  int rank = 0;
  std::istringstream lines(recommend.output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("1\t", 0) != 0) continue;
    ++rank;
    EXPECT_EQ(line.rfind("1\t" + std::to_string(rank) + "\t", 0), 0u) << line;
  }
  EXPECT_EQ(rank, 3) << recommend.output;
  // --output holds the same lines, written whole once made: a run that fails leaves an existing file
  // as it was, and the inputs are never an output.
  const std::string listing = dir.path("top3.tsv");
  ASSERT_EQ(run_cli("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --k 3 --output " +
                    listing).exit_code,
            0);
  std::ifstream written(listing);
  const std::string written_text((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  EXPECT_NE(recommend.output.find(written_text), std::string::npos) << written_text;
  const std::string precious = dir.write("precious.tsv", "kept\n");
  expect_refused("recommend " + kData + " --device cpu --checkpoint " + dir.path("absent.safetensors") +
                     " --user 1 --output " + precious,
                 "absent.safetensors");
  std::ifstream kept(precious);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>()), "kept\n");
  expect_refused("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --output " +
                     checkpoint,
                 "recommend: --output " + checkpoint + " is the input file " + checkpoint +
                     ": writing it would destroy it");
  EXPECT_EQ(run_cli("info --checkpoint " + checkpoint).exit_code, 0);
  expect_refused("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --output " +
                     dir.path("absent/top.tsv"),
                 "recommend: --output " + dir.path("absent/top.tsv") + ": there is no directory");
  // Titles from a movies file, the data's item ids read as MovieIDs.
  std::string movies;
  for (int id = 1; id <= 80; ++id) movies += fmt::format("{}::Movie number {} (1999)::Drama\n", id, id);
  const CliRun titled = run_cli("recommend " + kData + " --device cpu --checkpoint " + checkpoint +
                                " --user 1 --k 3 --movies " + dir.write("movies.dat", movies));
  ASSERT_EQ(titled.exit_code, 0) << titled.output;
  EXPECT_NE(titled.output.find("Movie number "), std::string::npos) << titled.output;
  // The titles' file is an input as well.
  expect_refused("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --movies " +
                     dir.path("movies.dat") + " --output " + dir.path("movies.dat"),
                 "movies.dat is the input file");
  EXPECT_EQ(muonrec::data::read_whole_file(dir.path("movies.dat")), movies);
  // More items asked for than the catalogue has: the note names what ran short.
  for (const std::string seen : {"", " --include-seen"}) {
    const CliRun all = run_cli("recommend " + kData + " --device cpu --checkpoint " + checkpoint + " --user 1 --k 90" +
                               seen);
    ASSERT_EQ(all.exit_code, 0) << all.output;
    const std::string note =
        seen.empty() ? "(the catalogue has fewer unseen items)" : "(the catalogue has fewer items)";
    EXPECT_NE(all.output.find(note), std::string::npos) << all.output;
  }

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
  // Data read as it was says nothing of preprocessing.
  EXPECT_EQ(line_after(info.output, "data: "),
            "synthetic(users=300,items=80,min_length=20,max_length=60,seed=7) (300 users, 80 items, 11484 events)")
      << info.output;
  EXPECT_EQ(line_after(info.output, "evaluated with seen items filtered: "), "all") << info.output;
  EXPECT_EQ(line_after(info.output, "command: "), records[0].at("command").get<std::string>()) << info.output;
}

// An HSTU trained with timestamps learns a time bias; data without them (a prepared .txt beside its
// .inter) scores without it: eval and recommend say so, and are quiet given the timestamps.
// A bad MUONREC_HOST_CACHE_MB is an error like any other (it was read where a tensor is freed, a
// destructor, and aborted the program); a good one is used.
TEST(Cli, ABadHostCacheSizeIsAnError) {
  for (const char* value : {"abc", "-5", "99999999999999999"}) {
    const CliRun run = run_cli("train " + kSmallSasrec, std::string("MUONREC_HOST_CACHE_MB=") + value);
    EXPECT_EQ(run.exit_code, 1) << value << "\n" << run.output;
    EXPECT_NE(run.output.find(std::string("muonrec: error: MUONREC_HOST_CACHE_MB='") + value + "'"),
              std::string::npos)
        << run.output;
  }
  const CliRun good = run_cli("train " + kSmallSasrec, "MUONREC_HOST_CACHE_MB=0");
  EXPECT_EQ(good.exit_code, 0) << good.output;
}

TEST(Cli, AnHstuSaysWhenTheDataLacksTheTimestampsOfItsTimeBias) {
  muonrec::testkit::TempDir dir;
  const std::string checkpoint = dir.path("hstu.safetensors");
  ASSERT_EQ(run_cli("train --model hstu " + kData + " --maxlen 20 --d 16 --epochs 1 --device cpu --checkpoint " +
                    checkpoint).exit_code,
            0);
  ASSERT_EQ(run_cli("prepare " + kData + " --output " + dir.path("prepared")).exit_code, 0);
  const std::string untimed = "--data " + dir.path("prepared.txt");
  const std::string note = "learned a time bias from timestamps that " + dir.path("prepared.txt") + " lacks";
  for (const std::string& command : {"eval " + untimed, "recommend " + untimed + " --user 1"}) {
    const CliRun run = run_cli(command + " --device cpu --checkpoint " + checkpoint);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("note: " + checkpoint + " " + note), std::string::npos) << run.output;
  }
  for (const std::string& data : {kData, "--data " + dir.path("prepared.inter")}) {
    const CliRun timed = run_cli("eval " + data + " --device cpu --checkpoint " + checkpoint);
    ASSERT_EQ(timed.exit_code, 0) << timed.output;
    EXPECT_EQ(timed.output.find("learned a time bias"), std::string::npos) << timed.output;
  }
}

// --k-core renumbers the items, so a checkpoint trained on a k-core evaluates on the same k-core only:
// without it, eval refuses and names the difference.
TEST(Cli, AKCoreCheckpointEvaluatesOnTheSameKCore) {
  muonrec::testkit::TempDir dir;
  std::string pairs;
  for (int user = 1; user <= 40; ++user)
    for (int step = 0; step < 6; ++step) pairs += fmt::format("{} {}\n", user, 1 + (user * 7 + step * 3) % 20);
  pairs += "41 25\n41 26\n41 27\n";  // items no one else has: outside the 2-core
  const std::string data = "--data " + dir.write("pairs.txt", pairs);
  const std::string checkpoint = dir.path("core.safetensors");
  const CliRun train =
      run_cli("train " + data + " --k-core 2 --maxlen 8 --d 8 --epochs 1 --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("2-core (users: at least 3 events, as the split needs): 1 users, 3 items and 3 events "
                              "dropped"),
            std::string::npos)
      << train.output;
  EXPECT_NE(train.output.find("40 users, 20 items"), std::string::npos) << train.output;
  expect_refused("eval " + data + " --device cpu --checkpoint " + checkpoint,
                 "the model was trained on data preprocessed otherwise (its preprocessing: 2-core; here: none): give "
                 "the same --dedupe and --k-core");
  expect_refused("eval " + data + " --k-core 2 --dedupe --device cpu --checkpoint " + checkpoint,
                 "(its preprocessing: 2-core; here: dedupe, 2-core)");
  const CliRun eval = run_cli("eval " + data + " --k-core 2 --device cpu --checkpoint " + checkpoint);
  EXPECT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_EQ(eval.output.find("note: this evaluation filters seen items otherwise"), std::string::npos) << eval.output;
  // Other filtering is allowed, and said.
  const CliRun unfiltered =
      run_cli("eval " + data + " --k-core 2 --no-filter-seen --device cpu --checkpoint " + checkpoint);
  EXPECT_EQ(unfiltered.exit_code, 0) << unfiltered.output;
  EXPECT_NE(unfiltered.output.find("note: this evaluation filters seen items otherwise than the run that wrote " +
                                   checkpoint + " (--no-filter-seen true (the state's run: false))"),
            std::string::npos)
      << unfiltered.output;
  const CliRun info = run_cli("info --checkpoint " + checkpoint);
  EXPECT_NE(info.output.find("events), preprocessed: 2-core"), std::string::npos) << info.output;
  expect_refused("baseline --k-core 2", "--k-core applies to data files only");
  // User 41 is in the file, outside the core.
  expect_refused("recommend " + data + " --k-core 2 --device cpu --checkpoint " + checkpoint + " --user 41",
                 "user 41 is not in " + dir.path("pairs.txt") + " (or is among the 1 users the k-core dropped)");
}

// The "settings" of a run record, saved as a file, rerun the same run (same test metrics on the
// CPU, where training is deterministic); a flag on the command line wins over the file, and a key
// no flag has is refused, naming it.
// A --config file's values of flags the run does not read (another model's, the sampled loss's under
// --loss full, the cosine floor under a constant rate) take their defaults: the state holds only what
// the run read, so the run's recorded settings resume it.
TEST(Cli, FlagsAConfigFileLeavesUnreadTakeTheirDefaults) {
  muonrec::testkit::TempDir dir;
  const std::string stray = dir.write("stray.toml",
                                      "train.model = \"bert4rec\"\ntrain.mask-prob = 0.4\ntrain.loss = \"sampled\"\n"
                                      "train.negatives = 7\ntrain.temperature = 0.5\ntrain.l2-normalize = true\n"
                                      "train.min-lr = 0.001\n");
  const std::string last = dir.path("last.safetensors"), metrics = dir.path("run.jsonl");
  const CliRun first = run_cli("train --config " + stray + " " + kSmallSasrec +
                               " --model sasrec --loss full --stop-after-epoch 1 --save-last " + last + " --metrics " +
                               metrics);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string settings = read_jsonl(metrics).at(0).at("settings");
  for (const char* unread : {"mask-prob", "negatives", "temperature", "l2-normalize", "min-lr"})
    EXPECT_EQ(settings.find(unread), std::string::npos) << unread << " in " << settings;
  // Where this invocation stops and writes is the job's, not the run's: the record leaves it out.
  for (const char* record : {"settings", "all_settings"})
    for (const char* job_only : {"stop-after-epoch", "save-last", "metrics"}) {
      const std::string recorded = read_jsonl(metrics).at(0).at(record);
      EXPECT_EQ(recorded.find(job_only), std::string::npos) << job_only << " in " << record << ": " << recorded;
    }
  const CliRun resumed = run_cli("train --config " + dir.write("recorded.toml", settings) + " --resume " + last);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("test at that epoch:"), std::string::npos) << resumed.output;
  // HSTU has no feed-forward layer: a file's --ff leaves its checkpoint at the default.
  const std::string hstu = dir.path("hstu.safetensors");
  const CliRun hstu_train = run_cli("train --config " + dir.write("ff.toml", "train.ff = 32\n") + " " + kData +
                                    " --model hstu --maxlen 10 --d 8 --epochs 1 --device cpu --checkpoint " + hstu);
  ASSERT_EQ(hstu_train.exit_code, 0) << hstu_train.output;
  EXPECT_EQ(line_after(hstu_train.output, "model: hstu ").find("ff="), std::string::npos) << hstu_train.output;
  const CliRun info = run_cli("info --checkpoint " + hstu);
  EXPECT_NE(info.output.find(" ff=0 "), std::string::npos) << info.output;
}

// HSTU's sampled softmax trains the logits its full softmax ranks by (cosines / 0.05) unless the
// flags say otherwise, and the run's record says so, so that it replays the same.
TEST(Cli, HstuSampledSoftmaxDefaultsToItsCosineLogits) {
  muonrec::testkit::TempDir dir;
  const std::string hstu =
      kData + " --model hstu --loss sampled --negatives 8 --maxlen 8 --d 8 --epochs 1 --device cpu";
  const std::string metrics = dir.path("hstu.jsonl");
  const CliRun run = run_cli("train " + hstu + " --metrics " + metrics);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string cosine = "loss: sampled softmax (8 negatives, temperature 0.05, L2-normalised)";
  EXPECT_NE(run.output.find(cosine), std::string::npos) << run.output;
  const std::string all_settings = read_jsonl(metrics).at(0).at("all_settings");
  EXPECT_NE(all_settings.find("train.temperature=0.05\n"), std::string::npos) << all_settings;
  EXPECT_NE(all_settings.find("train.l2-normalize=true\n"), std::string::npos) << all_settings;
  const CliRun replayed = run_cli("train --config " + dir.write("all.toml", all_settings));
  ASSERT_EQ(replayed.exit_code, 0) << replayed.output;
  EXPECT_NE(replayed.output.find(cosine), std::string::npos) << replayed.output;
  EXPECT_EQ(line_after(replayed.output, "test at that epoch:"), line_after(run.output, "test at that epoch:"));

  const CliRun told = run_cli("train " + hstu + " --temperature 0.5 --l2-normalize=false");
  EXPECT_NE(told.output.find("loss: sampled softmax (8 negatives, temperature 0.5) "), std::string::npos)
      << told.output;
  const CliRun sasrec = run_cli("train " + kData + " --loss sampled --negatives 8 --maxlen 8 --d 8 --epochs 1");
  EXPECT_NE(sasrec.output.find("loss: sampled softmax (8 negatives, temperature 1) "), std::string::npos)
      << sasrec.output;
}

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
  EXPECT_NE(again.output.find("optimizer: Muon lr=0.02 momentum=0.95 nesterov=false"), std::string::npos)
      << again.output;
  // The settings leave out where outputs went (--metrics here), so rerunning them cannot append to
  // the first run's files.
  EXPECT_EQ(settings.find("metrics"), std::string::npos) << settings;
  EXPECT_EQ(read_jsonl(again_metrics).at(0).at("settings"), settings);

  const CliRun shorter = run_cli("train --config " + config + " --epochs 1 --metrics " + dir.path("short.jsonl"));
  ASSERT_EQ(shorter.exit_code, 0) << shorter.output;
  EXPECT_NE(shorter.output.find("for 1 epochs"), std::string::npos) << shorter.output;
  // --optim adamw on the command line wins over the Muon run's file and leaves its Muon flags
  // unread; the same flag typed beside --optim adamw is refused.
  // Its record leaves the unread Muon flags out (compare would set them side by side as differences).
  const std::string adamw_metrics = dir.path("adamw.jsonl");
  const CliRun with_adamw =
      run_cli("train --config " + config + " --epochs 1 --optim adamw --metrics " + adamw_metrics);
  ASSERT_EQ(with_adamw.exit_code, 0) << with_adamw.output;
  EXPECT_NE(with_adamw.output.find("optimizer: AdamW"), std::string::npos) << with_adamw.output;
  for (const char* record : {"settings", "all_settings"}) {
    const std::string recorded = read_jsonl(adamw_metrics).at(0).at(record);
    EXPECT_EQ(recorded.find("muon-"), std::string::npos) << record << ": " << recorded;
    EXPECT_NE(recorded.find("train.optim=\"adamw\""), std::string::npos) << record << ": " << recorded;
  }
  const CliRun plain_adamw =
      run_cli("train " + kSmallSasrec + " --optim adamw --metrics " + dir.path("plain_adamw.jsonl"));
  ASSERT_EQ(plain_adamw.exit_code, 0) << plain_adamw.output;
  const CliRun compared = run_cli("compare " + adamw_metrics + " " + dir.path("plain_adamw.jsonl"));
  ASSERT_EQ(compared.exit_code, 0) << compared.output;
  EXPECT_EQ(compared.output.find("muon-"), std::string::npos) << compared.output;
  expect_refused("train --config " + config + " --optim adamw --muon-no-nesterov",
                 "--muon-no-nesterov applies to --optim muon only");

  // A key set twice, lines apart (an override appended to a recorded file), is refused: CLI11 would
  // take the first, silently. Under a [train] section the key is the same one.
  const std::string appended = dir.write("appended.toml", "train.epochs = 2\ntrain.lr = 0.01\ntrain.epochs = 3\n");
  expect_refused("train --config " + appended,
                 appended + ", line 3: 'train.epochs' is set again (first on line 1); a config file sets each flag "
                            "once");
  expect_refused("train --config=" + dir.write("sections.toml", "train.epochs = 1 # one\n[train]\nepochs = 2\n"),
                 "line 3: 'train.epochs' is set again (first on line 1)");
  // A quoted key (TOML's "epochs") is the same key.
  expect_refused("train --config " + dir.write("quoted.toml", "[train]\nepochs = 1\n\"epochs\" = 2\n"),
                 "line 3: 'train.epochs' is set again (first on line 2)");
  // ... and so is one flag under two of its names (--lr is --adam-lr).
  expect_refused("train --config " + dir.write("aliases.toml", "train.lr = 0.5\ntrain.adam-lr = 0.001\n"),
                 "line 2: 'train.adam-lr' is set again (first on line 1, as 'train.lr')");
  // Flags that exclude each other: the typed one wins over the file's, which the run's record then
  // leaves out (so that it replays); both in the file is refused.
  const std::string unfiltered = dir.write("unfiltered.toml", settings + "train.no-filter-seen=true\n");
  const std::string last_five = dir.path("last5.jsonl");
  const CliRun typed_wins =
      run_cli("train --config " + unfiltered + " --epochs 1 --filter-seen-last 5 --metrics " + last_five);
  ASSERT_EQ(typed_wins.exit_code, 0) << typed_wins.output;
  const std::string replayed = read_jsonl(last_five).at(0).at("settings");
  EXPECT_NE(replayed.find("train.filter-seen-last=5"), std::string::npos) << replayed;
  EXPECT_EQ(replayed.find("no-filter-seen"), std::string::npos) << replayed;
  EXPECT_NE(read_jsonl(last_five).at(0).at("all_settings").get<std::string>().find("train.no-filter-seen=false"),
            std::string::npos);
  expect_refused("train --config " + dir.write("both.toml", "train.no-filter-seen=true\ntrain.filter-seen-last=5\n"),
                 "--no-filter-seen excludes --filter-seen-last (both in the --config file)");
  // A flag typed false keeps no seen item, so it excludes nothing: the file's --filter-seen-last holds.
  const std::string kept = dir.path("kept.jsonl");
  const std::string last5 = dir.write("last5.toml", settings + "train.filter-seen-last=5\n");
  const CliRun false_flag = run_cli("train --config " + last5 + " --epochs 1 --no-filter-seen=false --metrics " + kept);
  ASSERT_EQ(false_flag.exit_code, 0) << false_flag.output;
  EXPECT_NE(read_jsonl(kept).at(0).at("settings").get<std::string>().find("train.filter-seen-last=5"),
            std::string::npos);

  const std::string bad = dir.write("bad.toml", settings + "train.epocs=3\n");
  expect_refused("train --config " + bad, "--config: no train flag is called 'train.epocs'", /*flag_error=*/true);
  // A bad value from the file is placed there; the same flag typed is the command line's.
  const std::string bad_value = dir.write("bad_value.toml", "train.eval-every=2\ntrain.epochs=abc\n");
  expect_refused("train --config " + bad_value, "Could not convert: --epochs = abc (" + bad_value + ", line 2)\n",
                 /*flag_error=*/true);
  expect_refused("train --config " + dir.write("bad_choice.toml", "[train]\n\nschedule = \"cosin\"\n"),
                 "--schedule: cosin not in {constant,cosine} (" + dir.path("bad_choice.toml") + ", line 3)\n",
                 /*flag_error=*/true);
  expect_refused("train --config " + dir.write("eval.toml", "train.eval-every=2\n") + " --eval-every x",
                 "Could not convert: --eval-every = x\n", /*flag_error=*/true);
}

// A run's settings rerun on the other kind of data: the file's flags of the source not used are
// left unread (and out of the new record); typed, they are refused.
TEST(Cli, ConfigOfASyntheticRunRerunsOnADataFileAndBack) {
  muonrec::testkit::TempDir dir;
  std::string lines;
  for (int user = 1; user <= 40; ++user)
    lines += fmt::format("{} {} {} {} {} {}\n", user, 1 + user % 9, 1 + (user + 2) % 9, 1 + (user + 4) % 9,
                         1 + (user + 6) % 9, 1 + (user + 7) % 9);
  const std::string sequences = dir.write("seq.txt", lines);
  const std::string synthetic_metrics = dir.path("synthetic.jsonl");
  const CliRun synthetic = run_cli("train " + kSmallSasrec + " --metrics " + synthetic_metrics);
  ASSERT_EQ(synthetic.exit_code, 0) << synthetic.output;
  const std::string settings = read_jsonl(synthetic_metrics).at(0).at("settings");
  ASSERT_NE(settings.find("synthetic-users"), std::string::npos) << settings;
  const std::string config = dir.write("synthetic.toml", settings);

  const std::string file_metrics = dir.path("file.jsonl");
  const CliRun on_file = run_cli("train --config " + config + " --data " + sequences + " --metrics " + file_metrics);
  ASSERT_EQ(on_file.exit_code, 0) << on_file.output;
  EXPECT_NE(on_file.output.find("40 users, 9 items"), std::string::npos) << on_file.output;
  for (const char* record : {"settings", "all_settings"})
    EXPECT_EQ(read_jsonl(file_metrics).at(0).at(record).get<std::string>().find("synthetic-"), std::string::npos)
        << record;

  const std::string deduped = dir.write("deduped.toml", "train.data=\"" + sequences + "\"\ntrain.dedupe=true\n" +
                                                            "train.maxlen=8\ntrain.d=8\ntrain.epochs=1\n");
  const CliRun on_synthetic = run_cli("train --config " + deduped + " --data synthetic --synthetic-users 100");
  ASSERT_EQ(on_synthetic.exit_code, 0) << on_synthetic.output;
  EXPECT_NE(on_synthetic.output.find("): 100 users, 500 items"), std::string::npos) << on_synthetic.output;

  expect_refused("train --config " + config + " --data " + sequences + " --synthetic-items 9",
                 "--synthetic-items applies to --data synthetic only");
  expect_refused("train --config " + deduped + " --data synthetic --k-core 2", "--k-core applies to data files only");
}

// --config belongs to the app (CLI11 reads config files at the top level), so train's help says so.
TEST(Cli, TrainHelpNamesTheConfigFile) {
  const CliRun help = run_cli("train --help");
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("muonrec train --config FILE"), std::string::npos) << help.output;
}

// A '#' inside a quoted value is part of it, as in TOML (CLI11 alone cut the line there, so a run
// whose data path held one did not read back); outside quotes it starts a comment.
TEST(Cli, ConfigKeepsAHashInsideQuotes) {
  muonrec::testkit::TempDir dir;
  const std::string data = dir.write("run#1.txt", small_pairs(8));
  const std::string metrics = dir.path("first.jsonl");
  const std::string model = " --maxlen 5 --d 8 --epochs 1 --device cpu";
  const CliRun first = run_cli("train --data '" + data + "'" + model + " --metrics " + metrics);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string settings = read_jsonl(metrics).at(0).at("settings");
  EXPECT_NE(settings.find("train.data=\"" + data + "\""), std::string::npos) << settings;
  const CliRun again = run_cli("train --config " + dir.write("run.toml", settings));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(line_after(again.output, "test at that epoch:"), line_after(first.output, "test at that epoch:"))
      << again.output;

  const std::string commented = dir.write(
      "commented.toml", "# the first run, again\ntrain.data = '" + data + "'  # with 'quotes' in the comment\n" +
                            "train.maxlen = 5\ntrain.d=8 #\ntrain.epochs = 1\ntrain.device = \"cpu\"\n");
  const CliRun from_comments = run_cli("train --config " + commented);
  ASSERT_EQ(from_comments.exit_code, 0) << from_comments.output;
  EXPECT_EQ(line_after(from_comments.output, "test at that epoch:"), line_after(first.output, "test at that epoch:"));

  const std::string nul = dir.write("nul.toml", std::string("train.epochs = 1\ntrain.d = 8") + '\0' + "\n");
  expect_refused("train --config " + nul, nul + ", line 2: a NUL byte; a config file is text");
}

// A run record's item-vector flags give way to a typed --item-vectors-from-checkpoint: the new
// record leaves them out and replays, and the TIGER checkpoint keeps the run's filtering.
TEST(Cli, TigerItemVectorFlagsOfAConfigGiveWayToATypedCheckpoint) {
  muonrec::testkit::TempDir dir;
  const std::string sasrec = dir.path("sasrec.safetensors");
  ASSERT_EQ(run_cli("train " + kSmallSasrec + " --checkpoint " + sasrec).exit_code, 0);
  const std::string config =
      dir.write("tiger.toml", "train.model=\"tiger\"\ntrain.item-vectors=\"cooccurrence\"\ntrain.cooc-window=5\n");
  const std::string metrics = dir.path("tiger.jsonl"), checkpoint = dir.path("tiger.safetensors");
  const CliRun run = run_cli("train --config " + config + " " + kData +
                             " --sid-levels 2 --sid-codebook 8 --d 16 --epochs 1 --beam 5 --device cpu "
                             "--item-vectors-from-checkpoint " + sasrec + " --metrics " + metrics +
                             " --checkpoint " + checkpoint);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::string settings = read_jsonl(metrics).at(0).at("settings");
  EXPECT_EQ(settings.find("cooc-window"), std::string::npos) << settings;
  EXPECT_EQ(settings.find("item-vectors=\"cooccurrence\""), std::string::npos) << settings;
  const CliRun again = run_cli("train --config " + dir.write("again.toml", settings));
  EXPECT_EQ(again.exit_code, 0) << again.output;
  const CliRun unfiltered = run_cli("eval " + kData + " --no-filter-seen --device cpu --checkpoint " + checkpoint);
  EXPECT_NE(unfiltered.output.find("note: this evaluation filters seen items otherwise than the run that wrote"),
            std::string::npos)
      << unfiltered.output;
}

TEST(Cli, PatienceEndsTheRunEarly) {
  // A learning rate of 0: no validation after the first improves on it (the trainer tests cover
  // real trajectories; this one checks the flag and the lines it prints).
  muonrec::testkit::TempDir dir;
  const std::string last = dir.path("last.safetensors");
  const CliRun run = run_cli("train " + kData +
                             " --maxlen 20 --d 16 --epochs 6 --eval-every 1 --lr 0 --patience 2 "
                             "--device cpu --save-last " +
                             last);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("early stop after epoch 3: validation NDCG@10 has not improved for 2 validations"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(line_after(run.output, "best validation epoch ").rfind("1:", 0), 0u) << run.output;
  EXPECT_EQ(run.output.find("epoch 4 validation"), std::string::npos) << run.output;
  // Evaluating the last state says that its parameters are not the best epoch's.
  const CliRun eval = run_cli("eval " + kData + " --device cpu --checkpoint " + last);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find("note: " + last +
                             " holds the parameters after epoch 3; its run's best validation was "
                             "epoch 1"),
            std::string::npos)
      << eval.output;
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
  EXPECT_NE(train.output.find("note: beam 5 returns 5 of the 80 items a user: a target outside them is ranked last, so "
                              "MRR and HR@K and NDCG@K for K > 5 are lower bounds"),
            std::string::npos)
      << train.output;
  const CliRun eval = run_cli("eval " + kData + " --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  EXPECT_NE(eval.output.find(test_line.substr(test_line.find("HR@10"))), std::string::npos)
      << "train: " << test_line << "\neval: " << eval.output;
  // A beam as wide as the catalogue ranks every item; one narrower does not, and says so.
  const CliRun whole = run_cli("eval " + kData + " --device cpu --beam 80 --checkpoint " + checkpoint);
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  EXPECT_EQ(whole.output.find("note: beam"), std::string::npos) << whole.output;
  const CliRun narrower = run_cli("eval " + kData + " --device cpu --beam 79 --checkpoint " + checkpoint);
  EXPECT_NE(narrower.output.find("note: beam 79 returns 79 of the 80 items a user"), std::string::npos)
      << narrower.output;
  const CliRun info = run_cli("info --checkpoint " + checkpoint);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("model: tiger "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("written by: muonrec "), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("semantic-ID tokenizer"), std::string::npos) << info.output;
  EXPECT_NE(info.output.find("command: "), std::string::npos) << info.output;
  // Serving: the search excludes each user's items, so a beam as wide as k fills every list.
  const CliRun serve = run_cli("recommend " + kData + " --device cpu --k 5 --beam 5 --checkpoint " + checkpoint);
  ASSERT_EQ(serve.exit_code, 0) << serve.output;
  EXPECT_EQ(serve.output.find("got fewer than"), std::string::npos) << serve.output;
}

// The TIGER paper's tokenizer: an RQ-VAE trained before the model, its progress shown, its name in
// the checkpoint; its flags need it, and it has no balanced assignment.
TEST(Cli, TigerTrainsWithTheRqVaeTokenizer) {
  muonrec::testkit::TempDir dir;
  const std::string checkpoint = dir.path("tiger.safetensors");
  const CliRun train = run_cli("train --model tiger " + kData +
                               " --item-vectors cooccurrence --sid-levels 2 --sid-codebook 8 --sid-width 8 --d 16 "
                               "--sid-tokenizer rq-vae --rqvae-epochs 3 --rqvae-hidden 16 --rqvae-latent 4 "
                               "--epochs 1 --beam 5 --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("rq-vae epoch 3/3: loss "), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("semantic IDs: rq-vae: reconstruction "), std::string::npos) << train.output;
  EXPECT_NE(train.output.find("vocabulary 1+8+8+"), std::string::npos) << train.output;
  const CliRun info = run_cli("info --checkpoint " + checkpoint);
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("semantic-ID tokenizer (rq-vae): "), std::string::npos) << info.output;
  // The run records the RQ-VAE's settings, and not RQ-KMeans' balanced assignment, which it has none of.
  const auto fixed = nlohmann::json::parse(muonrec::load_safetensors(checkpoint).metadata.at("fixed_settings"));
  EXPECT_EQ(fixed.at("sid-tokenizer"), "rq-vae");
  EXPECT_EQ(fixed.at("rqvae-epochs"), "3");
  EXPECT_EQ(fixed.at("rqvae-hidden"), "16");
  EXPECT_FALSE(fixed.contains("sid-balanced")) << fixed.dump();
  const CliRun eval = run_cli("eval " + kData + " --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(eval.exit_code, 0) << eval.output;

  expect_refused("train --model tiger --rqvae-epochs 3", "--rqvae-epochs applies to --sid-tokenizer rq-vae only");
  expect_refused("train --model tiger --sid-tokenizer rq-vae --sid-unbalanced",
                 "--sid-balanced applies to --sid-tokenizer rq-kmeans only");
  expect_refused("train --model tiger --sid-balanced --sid-unbalanced",
                 "--sid-balanced / --sid-unbalanced is given 2 times (on the command line, or in a --config file)");
  expect_refused("train --model tiger --config " +
                     dir.write("both.toml", "train.sid-balanced=true\ntrain.sid-unbalanced=true\n"),
                 "line 2: 'train.sid-unbalanced' is set again (first on line 1, as 'train.sid-balanced')");
  expect_refused("train --model tiger --sid-tokenizer rq-vae --rqvae-hidden 64,x",
                 "--rqvae-hidden '64,x': 'x' is not a positive width");
  expect_refused("train --model tiger --sid-tokenizer rq-vq", "--sid-tokenizer: rq-vq not in {rq-kmeans,rq-vae}",
                 /*flag_error=*/true);
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
  expect_refused("compare " + dir.path("adamw.jsonl") + " --metric ndcg11",
                 "no validation records with the metric 'ndcg11'");
}

// Per-user ranks from eval and baseline, compared user by user; a RecBole file's string tokens name
// the users in the files (and the data line says they are strings).
TEST(Cli, CompareRanksPairsUsers) {
  muonrec::testkit::TempDir dir;
  std::string inter = "user_id:token\titem_id:token\ttimestamp:float\n";
  for (int u = 0; u < 40; ++u)
    for (int t = 0; t < 8; ++t)
      inter += fmt::format("U{:02d}\tB{:03d}\t{}\n", u, (u * 7 + t * 3) % 30, t);
  const std::string data = "--data " + dir.write("shop.inter", inter);
  const std::string checkpoint = dir.path("model.safetensors");
  const CliRun train = run_cli("train " + data + " --d 16 --epochs 3 --device cpu --checkpoint " + checkpoint);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("user and item ids are strings, numbered in sorted order"), std::string::npos)
      << train.output;
  const CliRun eval = run_cli("eval " + data + " --device cpu --checkpoint " + checkpoint + " --ranks " +
                              dir.path("model.tsv"));
  ASSERT_EQ(eval.exit_code, 0) << eval.output;
  const CliRun baseline = run_cli("baseline " + data + " --ranks " + dir.path("popular.tsv"));
  ASSERT_EQ(baseline.exit_code, 0) << baseline.output;
  std::ifstream ranks(dir.path("model.tsv"));
  std::string context, header, first;
  std::getline(ranks, context);
  std::getline(ranks, header);
  std::getline(ranks, first);
  EXPECT_EQ(context, "# muonrec ranks: split test; 40 users, 30 items, 320 events, preprocessing none; seen items "
                     "filtered: all");
  EXPECT_EQ(header, "user\tposition");
  EXPECT_EQ(first.substr(0, 4), "U00\t") << first;

  const CliRun compare = run_cli("compare --ranks " + dir.path("popular.tsv") + " " + dir.path("model.tsv") +
                                 " --metric hr10 --resamples 500");
  ASSERT_EQ(compare.exit_code, 0) << compare.output;
  EXPECT_NE(compare.output.find("hr10 over the same 40 users"), std::string::npos) << compare.output;
  EXPECT_NE(compare.output.find("sign-flip test p = "), std::string::npos) << compare.output;
  EXPECT_NE(compare.output.find("(500 resamples)"), std::string::npos) << compare.output;
  expect_refused("compare --ranks " + dir.path("model.tsv"), "compare --ranks: give pairs of ranks files");
  // The validation split's ranks are no pair for the test split's.
  ASSERT_EQ(run_cli("baseline " + data + " --split valid --ranks " + dir.path("popular_valid.tsv")).exit_code, 0);
  expect_refused("compare --ranks " + dir.path("popular_valid.tsv") + " " + dir.path("model.tsv"),
                 "ranks split validation; 40 users");
  // Two pairs (seeds, say): each, then pooled.
  const CliRun pairs = run_cli("compare --ranks --resamples 200 " + dir.path("popular.tsv") + " " +
                               dir.path("model.tsv") + " " + dir.path("model.tsv") + " " + dir.path("popular.tsv"));
  ASSERT_EQ(pairs.exit_code, 0) << pairs.output;
  EXPECT_NE(pairs.output.find("pair 2: ndcg10 over the same 40 users"), std::string::npos) << pairs.output;
  EXPECT_NE(pairs.output.find("pooled over the 2 pairs, (pair, user) units: ndcg10 over the same 80 units"),
            std::string::npos)
      << pairs.output;
  EXPECT_NE(pairs.output.find("  units higher under b: "), std::string::npos) << pairs.output;
  expect_refused("compare --ranks --resamples 100000000000 " + dir.path("popular.tsv") + " " + dir.path("model.tsv"),
                 "compare: resamples must be in [1, 10000000], got 100000000000");
  expect_refused("compare " + dir.path("model.tsv") + " --resamples 5", "--resamples requires --ranks",
                 /*flag_error=*/true);
  expect_refused("compare --ranks " + dir.path("model.tsv") + " " + dir.path("popular.tsv") + " --markdown",
                 "--markdown excludes --ranks", /*flag_error=*/true);
  expect_refused("compare " + dir.path("model.tsv"), "is a file of per-user ranks: compare two of them with --ranks");
}

// `prepare` writes the data as read for other tools, and muonrec reads it back with the same shape.
// A prepared MovieLens file numbers its movies 1..m; the PREFIX_items.tsv beside it maps them back to
// MovieIDs, so --movies gives each item its own title without naming the map.
TEST(Cli, APreparedMovieLensFileFindsItsTitlesThroughItsItemsMap) {
  muonrec::testkit::TempDir dir;
  std::string ratings, movies;
  for (int user = 1; user <= 30; ++user)
    for (int step = 0; step < 5; ++step)
      ratings += fmt::format("{}::{}::4::{}\n", user, 10 * (1 + (user + step * 3) % 12), 1000 + step);
  for (int movie = 10; movie <= 120; movie += 10) movies += fmt::format("{}::Movie {} (1999)::Drama\n", movie, movie);
  ASSERT_EQ(run_cli("prepare --data " + dir.write("ratings.dat", ratings) + " --output " + dir.path("p")).exit_code,
            0);
  const std::string checkpoint = dir.path("p.safetensors");
  ASSERT_EQ(run_cli("train --data " + dir.path("p.txt") + " --maxlen 8 --d 8 --epochs 1 --device cpu --checkpoint " +
                    checkpoint).exit_code,
            0);
  const CliRun titled = run_cli("recommend --data " + dir.path("p.txt") + " --device cpu --checkpoint " + checkpoint +
                                " --user 1 --k 5 --movies " + dir.write("movies.dat", movies));
  ASSERT_EQ(titled.exit_code, 0) << titled.output;
  int lines = 0;
  std::istringstream out(titled.output);
  for (std::string line; std::getline(out, line);) {
    if (line.rfind("1\t", 0) != 0) continue;  // user 1's lines: user, rank, item, score, title
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
    ASSERT_EQ(fields.size(), 5u) << line;
    EXPECT_EQ(fields[4], fmt::format("Movie {} (1999)", 10 * std::stoi(fields[2]))) << line;  // movie 10k is item k
    ++lines;
  }
  EXPECT_EQ(lines, 5) << titled.output;
}

// An output that names an input (under any name) or a directory is refused before any work, and
// the inputs are left as they were: a ranks file over the checkpoint, metrics appended to the data.
TEST(Cli, AnOutputNamingAnInputOrADirectoryIsRefusedBeforeAnyWork) {
  muonrec::testkit::TempDir dir;
  const std::string events = small_pairs(6);
  const std::string data = dir.write("data.txt", events);
  const std::string small = "--data " + data + " --maxlen 8 --d 8 --epochs 1 --device cpu";
  const std::string checkpoint = dir.path("c.safetensors");
  ASSERT_EQ(run_cli("train " + small + " --checkpoint " + checkpoint).exit_code, 0);
  const std::string checkpoint_bytes = muonrec::data::read_whole_file(checkpoint);
  for (const std::string flag : {"--metrics", "--checkpoint", "--save-last"})
    expect_refused("train " + small + " " + flag + " " + data, flag + " " + data + " is the input file " + data);
  std::filesystem::create_directory(dir.path("sub"));  // TIGER's item vectors read from a checkpoint, named otherwise
  expect_refused("train --model tiger --data " + data + " --epochs 1 --device cpu --item-vectors-from-checkpoint " +
                     checkpoint + " --checkpoint " + dir.path("sub/../c.safetensors"),
                 "--checkpoint " + dir.path("sub/../c.safetensors") + " is the input file " + checkpoint);
  // TIGER's item texts: a movies file, an item table.
  const std::string movies = dir.write("movies.dat", "1::Toy Story (1995)::Animation\n");
  expect_refused("train --model tiger --data " + data + " --epochs 1 --device cpu --movies " + movies + " --metrics " +
                     movies,
                 "--metrics " + movies + " is the input file " + movies);
  const std::string titles = dir.write("shop_item_titles.txt", "B1 soap\n");
  expect_refused("train --model tiger --data " + data + " --epochs 1 --device cpu --item-text " + dir.path("shop") +
                     " --metrics " + titles,
                 "--metrics " + titles + " is the input file " + titles);
  // --item-text auto: the side files it finds beside the data.
  const std::string own_titles = dir.write("data_item_titles.txt", "B1 soap\n");
  expect_refused("train --model tiger --data " + data + " --epochs 1 --device cpu --checkpoint " + own_titles,
                 "--checkpoint " + own_titles + " is the input file " + own_titles);
  EXPECT_EQ(muonrec::data::read_whole_file(own_titles), "B1 soap\n");
  const std::string table = dir.write("items.csv", "item_id,title\n1,soap\n");
  expect_refused("train --model tiger --data " + data + " --epochs 1 --device cpu --item-text " + table +
                     " --checkpoint " + table,
                 "--checkpoint " + table + " is the input file " + table);
  EXPECT_EQ(muonrec::data::read_whole_file(movies), "1::Toy Story (1995)::Animation\n");
  expect_refused("baseline --data " + data + " --ranks " + data,
                 "baseline: --ranks " + data + " is the input file " + data);
  expect_refused("eval --data " + data + " --device cpu --checkpoint " + checkpoint + " --ranks " + checkpoint,
                 "eval: --ranks " + checkpoint + " is the input file " + checkpoint);
  EXPECT_EQ(muonrec::data::read_whole_file(data), events);
  EXPECT_EQ(muonrec::data::read_whole_file(checkpoint), checkpoint_bytes);

  std::filesystem::create_directory(dir.path("out"));
  const CliRun to_directory = run_cli("train " + small + " --checkpoint " + dir.path("out"));
  EXPECT_EQ(to_directory.exit_code, 1);
  EXPECT_NE(to_directory.output.find("--checkpoint " + dir.path("out") + ": it is a directory"), std::string::npos)
      << to_directory.output;
  EXPECT_EQ(to_directory.output.find("validation"), std::string::npos) << to_directory.output;  // nothing trained
  EXPECT_FALSE(std::filesystem::exists(dir.path("out.tmp")));
}

// ml-1m.txt numbers its movies 1..n its own way, and the sas_to_original_items.txt beside it gives
// their MovieIDs. A file prepared from it holds those dense ids as its items' sources, and its items
// map carries the MovieIDs along, so --movies still finds each item's own title, not the movie whose
// MovieID happens to equal a dense id. Dense item 5 has no event: the prepared ids shift past it.
TEST(Cli, AFilePreparedFromADenseMovieFileKeepsItsMovieIds) {
  muonrec::testkit::TempDir dir;
  std::string pairs, map, movies;
  for (int user = 1; user <= 30; ++user)
    for (int step = 0; step < 5; ++step) {
      const int item = 1 + (user + step * 3) % 8;  // 1..8, then 9 stands for 5
      pairs += fmt::format("{} {}\n", user, item == 5 ? 9 : item);
    }
  for (int item = 1; item <= 9; ++item) {
    map += fmt::format("{} {}\n", item, 100 + item);
    movies += fmt::format("{}::Wrong movie {} (1990)::Drama\n{}::Right movie {} (1999)::Drama\n", item, item,
                          100 + item, 100 + item);
  }
  dir.write("sas_to_original_items.txt", map);
  const std::string movies_file = dir.write("movies.dat", movies);
  ASSERT_EQ(run_cli("prepare --data " + dir.write("dense.txt", pairs) + " --output " + dir.path("p")).exit_code, 0);
  EXPECT_EQ(muonrec::data::read_whole_file(dir.path("p_items.tsv")),
            "item\tsource\tmovie\n1\t1\t101\n2\t2\t102\n3\t3\t103\n4\t4\t104\n5\t6\t106\n6\t7\t107\n"
            "7\t8\t108\n8\t9\t109\n");
  const std::string checkpoint = dir.path("p.safetensors");
  ASSERT_EQ(run_cli("train --data " + dir.path("p.txt") + " --maxlen 8 --d 8 --epochs 1 --device cpu --checkpoint " +
                    checkpoint).exit_code,
            0);
  const CliRun titled = run_cli("recommend --data " + dir.path("p.txt") + " --device cpu --checkpoint " + checkpoint +
                                " --user 1 --k 4 --include-seen --movies " + movies_file);
  ASSERT_EQ(titled.exit_code, 0) << titled.output;
  int lines = 0;
  std::istringstream out(titled.output);
  for (std::string line; std::getline(out, line);) {
    if (line.rfind("1\t", 0) != 0) continue;  // user, rank, item, score, title
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
    ASSERT_EQ(fields.size(), 5u) << line;
    const int item = std::stoi(fields[2]), dense = item < 5 ? item : item + 1;
    EXPECT_EQ(fields[4], fmt::format("Right movie {} (1999)", 100 + dense)) << line;
    ++lines;
  }
  EXPECT_EQ(lines, 4) << titled.output;
  // Prepared again, the MovieIDs come along through the first items map.
  ASSERT_EQ(run_cli("prepare --data " + dir.path("p.txt") + " --output " + dir.path("pp")).exit_code, 0);
  EXPECT_EQ(muonrec::data::read_whole_file(dir.path("pp_items.tsv")),
            "item\tsource\tmovie\n1\t1\t101\n2\t2\t102\n3\t3\t103\n4\t4\t104\n5\t5\t106\n6\t6\t107\n"
            "7\t7\t108\n8\t8\t109\n");
  // The source prepared under its own stem, again and again: the map the first run wrote beside it
  // numbers the prepared items and is never read for the source's.
  const std::string source = dir.write("dense.pairs", pairs);
  for (int run = 0; run < 2; ++run) {
    ASSERT_EQ(run_cli("prepare --data " + source + " --output " + dir.path("dense")).exit_code, 0);
    EXPECT_EQ(muonrec::data::read_whole_file(dir.path("dense_items.tsv")),
              muonrec::data::read_whole_file(dir.path("p_items.tsv")))
        << "run " << run;
  }
  // The movie map read is an input: no output may replace it.
  expect_refused("prepare --data " + source + " --output " + dir.path("sas_to_original_items"),
                 "sas_to_original_items.txt is the input file");
  EXPECT_EQ(muonrec::data::read_whole_file(dir.path("sas_to_original_items.txt")), map);
}

TEST(Cli, PrepareWritesWhatOtherToolsRead) {
  muonrec::testkit::TempDir dir;
  const CliRun prepare = run_cli("prepare " + kData + " --output " + dir.path("synthetic"));
  ASSERT_EQ(prepare.exit_code, 0) << prepare.output;
  EXPECT_NE(prepare.output.find("wrote " + dir.path("synthetic.txt")), std::string::npos) << prepare.output;
  EXPECT_NE(prepare.output.find("wrote " + dir.path("synthetic_items.tsv")), std::string::npos) << prepare.output;
  const CliRun again = run_cli("baseline --data " + dir.path("synthetic.txt"));
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("300 users, 80 items"), std::string::npos) << again.output;
  expect_refused("prepare " + kData, "--output is required", /*flag_error=*/true);
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
  expect_refused("train --data " + broken + " --format pairs --device cpu", broken + ", line 3");
  expect_refused("train " + kData + " --model gru4rec --device cpu",
                 "unknown model 'gru4rec' (available: sasrec, bert4rec, hstu, tiger)");
  expect_refused("train --bogus 3", "--bogus", /*flag_error=*/true);
  // Numbers: an empty value (which CLI11 reads as 0), a leading zero (octal: 010 would be seed 8), a
  // value out of range; typed or from a --config file, whose line is named.
  expect_refused("train --seed 010 --device cpu", "--seed: expects a decimal integer (a leading 0 reads as octal",
                 /*flag_error=*/true);
  expect_refused("train --batch 0x40 --device cpu", "--batch: expects a decimal integer", /*flag_error=*/true);
  expect_refused("train --lr '' --device cpu", "--lr: expects a number, got an empty value", /*flag_error=*/true);
  expect_refused("train --epochs '' --device cpu", "--epochs: expects an integer, got an empty value",
                 /*flag_error=*/true);
  const std::string values = dir.write("values.toml", "train.epochs = 1\ntrain.dropout = 1.5\n");
  expect_refused("train --config " + values, "--dropout: must be in [0, 1), got 1.5 (" + values + ", line 2)",
                 /*flag_error=*/true);
  expect_refused("train --config " + dir.write("empty.toml", "train.lr =\n"),
                 "--lr: expects a number, got an empty value", /*flag_error=*/true);
  expect_refused("train --config " + dir.write("typo.toml", "trian.lr = 0.1\n"), "no train flag is called 'trian.lr'",
                 /*flag_error=*/true);
  // A flag's value is a truth value: CLI11 alone reads 3 as true and -1 as false.
  const std::string truth = dir.write("truth.toml", "train.epochs = 1\ntrain.l2-normalize = 3\n");
  expect_refused("train --loss sampled --config " + truth,
                 "--l2-normalize: expects true or false (yes/no, on/off, 1/0), got '3' (" + truth + ", line 2)",
                 /*flag_error=*/true);
  expect_refused("train --baseline=-1 --device cpu", "--baseline: expects true or false", /*flag_error=*/true);
  expect_refused("train --model bert4rec --mask-prob 0 --device cpu", "--mask-prob: must be in (0, 1], got 0",
                 /*flag_error=*/true);
  // A run's own check of its settings places the file's flag it names first.
  const std::string warmup = dir.write("warmup.toml", "train.warmup-steps = 1000\ntrain.epochs = 1\n");
  const CliRun long_warmup = run_cli("train " + kData + " --config " + warmup + " --device cpu");
  EXPECT_EQ(long_warmup.exit_code, 1);
  EXPECT_NE(long_warmup.output.find("the learning rate would never reach its base value"), std::string::npos)
      << long_warmup.output;
  EXPECT_NE(long_warmup.output.find("(" + warmup + ", line 1)\n"), std::string::npos) << long_warmup.output;
  expect_refused("train " + kData + " --model hstu --head-dim 4 --device cpu",
                 "--head-dim applies to --model sasrec, bert4rec or tiger only");
  const CliRun version = run_cli("--version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  EXPECT_EQ(version.output.rfind("muonrec ", 0), 0u) << version.output;
  expect_refused("trian --epochs 3",
                 "unknown command 'trian' (available: train, eval, recommend, baseline, prepare, bench, info, "
                 "compare)");
  expect_refused("train --patience -1", "--patience", /*flag_error=*/true);
  expect_refused("train " + kData + " --epochs 3 --stop-after-epoch 1 --device cpu", "add --save-last");
  {
    // A state saved before any validation says so.
    const std::string early = dir.path("early.safetensors");
    ASSERT_EQ(run_cli("train " + kData + " --maxlen 20 --d 16 --epochs 2 --eval-every 2 --device cpu "
                      "--stop-after-epoch 1 --save-last " + early)
                  .exit_code,
              0);
    const CliRun info = run_cli("info --checkpoint " + early);
    EXPECT_NE(info.output.find("training: after epoch 1, no validation yet; optimizer adamw"), std::string::npos)
        << info.output;
    const CliRun eval = run_cli("eval " + kData + " --device cpu --checkpoint " + early);
    EXPECT_NE(eval.output.find("note: " + early + " holds the parameters after epoch 1; its run has not validated yet"),
              std::string::npos)
        << eval.output;
  }

  // --config carries train flags: eval and the others refuse it rather than take its data or
  // filtering silently.
  const std::string config = dir.write("run.toml", "train.no-filter-seen=true\n");
  expect_refused("--config " + config + " eval --checkpoint x.safetensors",
                 "--config applies to 'muonrec train' only");
  expect_refused("eval --config " + config + " --checkpoint x.safetensors", "--config applies to 'muonrec train' only");
  expect_refused("baseline --config " + config, "--config applies to 'muonrec train' only");

  // Flags that would go unheard.
  expect_refused("baseline --format bogus", "unknown data format 'bogus'");
  expect_refused("baseline --data " + dir.write("pairs.txt", "1 1\n1 2\n1 3\n") + " --synthetic-users 5",
                 "--synthetic-users applies to --data synthetic only");
  expect_refused("train --model hstu --sid-levels 2", "--sid-levels applies to --model tiger only");
  expect_refused("train --muon-lr 0.02", "--muon-lr applies to --optim muon only");
  expect_refused("train --optim adamw --ns-precision fp32", "--ns-precision applies to --optim muon only");
  expect_refused("train --model tiger --maxlen 50", "--maxlen applies to --model sasrec, bert4rec or hstu only");
  expect_refused("baseline --format pairs", "--format applies to data files only");
  expect_refused("baseline --no-filter-seen --filter-seen-last 3", "--no-filter-seen excludes --filter-seen-last");
  expect_refused("eval --checkpoint x.safetensors --batch 0", "--batch must be positive");
  // info describes only what eval would load: a checkpoint whose config disagrees with its tensors
  // is refused by both.
  {
    const std::string trained = dir.path("trained.safetensors");
    ASSERT_EQ(run_cli("train " + kSmallSasrec + " --checkpoint " + trained).exit_code, 0);
    muonrec::SafetensorsFile file = muonrec::load_safetensors(trained);
    // Without an item table there are no item vectors to take, and the refusal says where they come from.
    muonrec::SafetensorsFile no_items = file;
    no_items.tensors.erase("param.item.weight");
    const std::string no_items_path = dir.path("no_items.safetensors");
    muonrec::save_safetensors(no_items_path, no_items.tensors, no_items.metadata);
    expect_refused("train --model tiger " + kData + " --epochs 1 --device cpu --item-vectors-from-checkpoint " +
                       no_items_path,
                   no_items_path + ": no item table (param.item.weight): item vectors come from a SASRec");
    nlohmann::json config = nlohmann::json::parse(file.metadata.at("config"));
    config["d"] = 32;
    file.metadata["config"] = config.dump();
    const std::string damaged = dir.path("damaged.safetensors");
    muonrec::save_safetensors(damaged, file.tensors, file.metadata);
    expect_refused("info --checkpoint " + damaged,
                   damaged + ": its config (sasrec with n_items 80, d 32) does not match");
    expect_refused("eval " + kData + " --device cpu --checkpoint " + damaged, damaged + ": its config");
  }
  expect_refused("train --min-lr 1e-6", "--min-lr applies to --schedule cosine only");
  expect_refused("train --device cpu --matmul-precision bf16", "--matmul-precision bf16 applies to GPU products");
  expect_refused("train --model hstu --ff 64", "--ff applies to --model sasrec, bert4rec or tiger only");
  expect_refused("train --model tiger --device cpu",
                 "seed=7) is no file to find them beside: "
                 "give --item-text PREFIX or --movies FILE, or cluster no text: --item-vectors cooccurrence");
  expect_refused("train --model tiger --eval-batch 7", "--eval-batch applies to --model sasrec, bert4rec or hstu only");
  expect_refused("train --model tiger --item-vectors cooccurrence --movies movies.dat",
                 "--movies applies to --item-vectors text or text+cooccurrence only");
  expect_refused("train --model tiger --cooc-window 5",
                 "--cooc-window applies to --item-vectors cooccurrence or text+cooccurrence only");
  expect_refused("train --model tiger --item-vectors-from-checkpoint x.safetensors --sid-width 8",
                 "--item-vectors-from-checkpoint excludes --sid-width");
  // ... but typed over a --config file's --sid-width it wins (and goes on to read the checkpoint).
  expect_refused("train --config " + dir.write("width.toml", "train.model=\"tiger\"\ntrain.sid-width=8\n") +
                     " --item-vectors-from-checkpoint " + dir.path("absent.safetensors"),
                 dir.path("absent.safetensors") + ": cannot open file");
  expect_refused("train --model tiger --movie-map map.txt", "requires --movies", /*flag_error=*/true);

  // Numbers out of range, said plainly.
  expect_refused("train --model tiger --beam 0", "--beam: must be positive, got 0", /*flag_error=*/true);
  expect_refused("train --maxlen 0", "--maxlen: must be positive, got 0", /*flag_error=*/true);
  expect_refused("train --epochs 1 --epochs 2",
                 "--epochs is given 2 times (on the command line, or in a --config file); give it once",
                 /*flag_error=*/true);
  // A checkpoint that could not be written is refused before any training.
  expect_refused("train --epochs 1 --checkpoint " + dir.path("absent/best.safetensors"),
                 "--checkpoint " + dir.path("absent/best.safetensors") + ": there is no directory");
  expect_refused("train --model tiger --epochs 1 --save-last " + dir.path("absent/last.safetensors"),
                 "--save-last " + dir.path("absent/last.safetensors") + ": there is no directory");
  expect_refused("train --model tiger --sid-history 0", "--sid-history: must be positive, got 0", /*flag_error=*/true);
  expect_refused("train --model tiger --sid-codebook -3", "--sid-codebook: must be positive, got -3",
                 /*flag_error=*/true);
  expect_refused("train --ff -3", "--ff: must not be negative, got -3", /*flag_error=*/true);
  // Zero is not negative: these pass the flags' checks and reach the checkpoint's (refused, so nothing trains).
  expect_refused("train --ff 0 --head-dim 0 --patience 0 --seed 0 --epochs 1 --checkpoint " +
                     dir.path("absent/best.safetensors"),
                 "--checkpoint " + dir.path("absent/best.safetensors") + ": there is no directory");
  expect_refused("train --model tiger --sid-width 0", "--sid-width: must be positive, got 0", /*flag_error=*/true);
  expect_refused("train --model tiger --sid-iterations -1", "--sid-iterations: must not be negative, got -1",
                 /*flag_error=*/true);
  expect_refused("train --model tiger --negatives 5",
                 "--negatives applies to --loss sampled, with --model sasrec, bert4rec or hstu, only");
  expect_refused("train --dropout 1", "--dropout: must be in [0, 1), got 1", /*flag_error=*/true);
  // TIGER's model settings are checked before its item vectors and k-means, and before its run record.
  const std::string tiger_metrics = dir.path("tiger.jsonl");
  expect_refused("train --model tiger --heads 3 --metrics " + tiger_metrics, "tiger: d=64 is not divisible by heads=3");
  EXPECT_FALSE(std::filesystem::exists(tiger_metrics));
  expect_refused("recommend --checkpoint x.safetensors --k 0", "--k: must be positive, got 0", /*flag_error=*/true);
  expect_refused("recommend --checkpoint x.safetensors --movie-map none", "--movie-map requires --movies",
                 /*flag_error=*/true);

  expect_refused("info --checkpoint " + dir.write("notes.txt", "hello"), "notes.txt: not a safetensors file");
}

TEST(Cli, BenchTimesTrainingStepsOfTheModelTheFlagsDescribe) {
  const CliRun run = run_cli(
      "bench --model hstu --d 16 --blocks 1 --maxlen 12 --items 60 --batch 5 --steps 2 --untimed-steps 1 --optim muon "
      "--muon-lr 0.01 --device cpu");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(line_after(run.output, "model: ").find("hstu d=16 blocks=1 heads=1x16 maxlen=12"), std::string::npos)
      << run.output;
  EXPECT_NE(line_after(run.output, "optimizer: Muon lr=0.01 ").find("blocks.0.uvqk.weight"), std::string::npos)
      << run.output;
  EXPECT_NE(line_after(run.output, "step: ").find("ms, mean (2 steps after 1 untimed; 60 tokens per step"),
            std::string::npos)
      << run.output;
  EXPECT_NE(line_after(run.output, "phases, each synchronised (median ms): ").find("input "), std::string::npos);
  const nlohmann::json record = nlohmann::json::parse("{" + line_after(run.output, "{"));  // the last line
  ASSERT_EQ(record.value("kind", ""), "bench_step") << run.output;
  EXPECT_EQ(record["tokens_per_step"].get<double>(), 60.0);
  EXPECT_EQ(record["window"].get<int>(), 12);
  // What was timed, so that records gathered from several runs tell themselves apart.
  for (const auto& [key, value] : std::map<std::string, nlohmann::json>{
           {"model", "hstu"}, {"device", "cpu"}, {"optimizer", "muon"}, {"items", 60}, {"d", 16}, {"blocks", 1},
           {"maxlen", 12}, {"loss", "full softmax"}})
    EXPECT_EQ(record.value(key, nlohmann::json()), value) << key << " in " << record;
  EXPECT_GT(record["peak_bytes"].get<double>(), 0.0);

  const CliRun tiger = run_cli(
      "bench --model tiger --d 16 --blocks 1 --sid-levels 2 --sid-codebook 8 --sid-history 4 --items 50 --batch 5 "
      "--steps 2 --untimed-steps 1 --device cpu");
  ASSERT_EQ(tiger.exit_code, 0) << tiger.output;
  EXPECT_EQ(line_after(tiger.output, "model: tiger (decoder-only) d=16 blocks=1 ").find("history=4 items (12 tokens)"),
            std::string("heads=1x16 ff=16 ").size())
      << tiger.output;
  EXPECT_NE(line_after(tiger.output, "step: ").find("(2 steps after 1 untimed; 70 tokens per step"), std::string::npos)
      << tiger.output;  // 5 windows of 12 history tokens and the 2 codes of the item after them
  const nlohmann::json tiger_record = nlohmann::json::parse("{" + line_after(tiger.output, "{"));
  // Tokens: 4 history items of 2 levels and a final token, then the next item's code but its last token.
  EXPECT_EQ(tiger_record.value("window", 0), 14) << tiger_record;
  EXPECT_EQ(tiger_record.value("history_items", 0), 4) << tiger_record;
  EXPECT_FALSE(tiger_record.contains("maxlen")) << tiger_record;
  // Four batches' worth of histories, and at least 64.
  EXPECT_EQ(line_after(tiger.output, "bench: ").rfind("batches of 5 examples from 64 histories", 0), 0u)
      << tiger.output;
  const CliRun wide = run_cli("bench --model tiger --d 8 --blocks 1 --sid-levels 2 --sid-codebook 8 --sid-history 2 "
                              "--items 50 --batch 20 --steps 1 --untimed-steps 0 --device cpu");
  EXPECT_EQ(line_after(wide.output, "bench: ").rfind("batches of 20 examples from 80 histories", 0), 0u) << wide.output;
  expect_refused("bench --model tiger --maxlen 50 --device cpu",
                 "--maxlen applies to --model sasrec, bert4rec or hstu");
  expect_refused("bench --sid-history 5 --device cpu", "--sid-history applies to --model tiger only");
  expect_refused("bench --warmup-steps -5 --device cpu", "--warmup-steps: must not be negative, got -5",
                 /*flag_error=*/true);
  expect_refused("bench --model gru --device cpu", "unknown model 'gru' (available: sasrec, bert4rec, hstu, tiger)");
  expect_refused("bench --mask-prob 0.3 --device cpu", "--mask-prob applies to --model bert4rec only");
  expect_refused("bench --model hstu --ff 8 --device cpu", "--ff applies to --model sasrec, bert4rec or tiger only");
  expect_refused("bench --muon-lr 0.1 --device cpu", "--muon-lr applies to --optim muon only");
  expect_refused("bench --steps 0", "--steps: must be positive, got 0", /*flag_error=*/true);
  expect_refused("bench --data x.txt", "--data", /*flag_error=*/true);
  // A train --config file with another subcommand's keys (they share variables with train).
  const muonrec::testkit::TempDir dir;
  for (const auto& [line, message] : {std::pair<std::string, std::string>{"bench.steps=3", "--steps of 'bench'"},
                                      {"eval.split=\"valid\"", "--split of 'eval'"}})
    expect_refused("train --config " + dir.write("settings.toml", "train.epochs=1\n" + line + "\n") + " " +
                       kSmallSasrec,
                   "--config: the file sets " + message + ", not a train flag");
}
