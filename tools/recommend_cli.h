// `muonrec recommend`: the top-K next items for chosen users (or all) from a checkpoint of any
// model, given each user's whole history, as tab-separated lines in the data's own ids.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/recommend.h"
#include "muonrec/models/tiger_pipeline.h"

namespace muonrec {

struct RecommendCliArgs {
  std::string checkpoint;
  std::vector<std::string> users;  // as the data file names them; empty: every user
  RecommendOptions options;
  int64_t beam_width = 0;      // tiger: beams (0: the larger of the trained width and k)
  std::string output;          // TSV file; empty: standard output
  ItemVectorOptions titles;    // where item titles come from (item_text "none": no title column)

  // Registers --checkpoint, --user, --k, --include-seen, --beam, --output, --item-text, --movies,
  // --movie-map on the recommend command.
  void add_to(CLI::App* cmd);
};

// Writes the TSV of write_recommendations (models/recommend.h) to --output or standard output; the
// log lines (titles, timing, users with short lists) go to standard error.
int run_recommend(const RecommendCliArgs& args, const data::SequenceDataset& dataset, Device device);

}  // namespace muonrec
