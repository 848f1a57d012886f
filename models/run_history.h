// Training runs read back from a --metrics JSONL file: who each run was (its "run" record) and its
// validation curve (the "epoch" records), for comparing runs after the fact.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace muonrec {

// One validated epoch. `steps` counts optimizer steps from the start of the run (resumes included).
struct ValidationPoint {
  int64_t epoch = 0;
  int64_t steps = 0;
  double train_seconds = 0;  // training time up to the end of this epoch, over all its invocations
  std::map<std::string, double> valid;  // metric name ("ndcg10", "hr10", ...) -> value
  std::map<std::string, double> test;   // empty where the epoch record has no test metrics (tiger)
};

struct RunHistory {
  std::string name;      // the file, with "#k" when the file holds several runs
  std::string model;     // "sasrec", "hstu", ... ("?" for records written before run records existed)
  std::string optimizer;
  std::string settings;  // the run record's TOML settings ("train.FLAG=value" lines)
  std::string all_settings;  // the same with defaults ("" in records written before it existed)
  // Where it ran, beyond its flags, as its run records say: "users", "items", "events" (the data's
  // shape), "device", "muonrec" (the version) -> value; a resumed invocation's other value joins
  // after a comma ("cuda,cpu"). Records written before a field existed leave it out.
  std::map<std::string, std::string> environment;
  std::vector<ValidationPoint> validations;
  double train_seconds = 0;  // all its epochs (a redone epoch counted once)
  std::map<std::string, double> final_test;  // the result record's test metrics
  int64_t final_test_epoch = 0;              // the epoch they are of (the best validation NDCG@10)
  bool finished = false;                     // a result record ends the run
};

// The runs of one metrics file, in order. A fresh run starts at each "run" record; a resumed
// invocation's record (non-empty "resumed_from") and its epochs join the latest run that wrote the
// state it resumed from (its "save_last" or "checkpoint"; in files from before those fields, the
// run before it). Records
// written before run records existed form one run. Throws naming the file and line for a record
// that lacks a field the comparison needs, and for a line that is not a JSON object (a record cut
// short by a killed run or a full disk) unless `notes` is given: such a line is then skipped with a
// note there naming the file and line.
std::vector<RunHistory> read_run_histories(const std::string& path, std::ostream* notes = nullptr);

}  // namespace muonrec
