#include "tools/recommend_cli.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>

#include "engine/error.h"
#include "models/run_log.h"
#include "models/tiger_train.h"
#include "models/trainer.h"

namespace muonrec {
namespace {

// The dataset rows of the requested user ids (the data's ids, as in the input file), or every row.
std::vector<int64_t> rows_of(const data::SequenceDataset& dataset, const std::vector<int64_t>& users) {
  std::vector<int64_t> rows;
  if (users.empty()) {
    for (int64_t row = 0; row < dataset.num_users(); ++row) rows.push_back(row);
    return rows;
  }
  for (int64_t user : users) {
    auto it = std::lower_bound(dataset.user_ids.begin(), dataset.user_ids.end(), user);
    MUONREC_CHECK(it != dataset.user_ids.end() && *it == user, "recommend: user {} is not in {}{}", user,
                  dataset.source,
                  dataset.report.users_dropped_short == 0
                      ? ""
                      : fmt::format(" (or is among the {} users dropped for having fewer than {} events)",
                                    dataset.report.users_dropped_short, dataset.report.min_events_per_user));
    rows.push_back(it - dataset.user_ids.begin());
  }
  return rows;
}

std::vector<std::vector<ScoredItem>> recommend_from(const std::string& checkpoint, const data::SequenceDataset& dataset,
                                                    const std::vector<int64_t>& rows, const RecommendCliArgs& args,
                                                    Device device) {
  SafetensorsFile file = load_safetensors(checkpoint);
  if (!is_tiger_checkpoint(file)) {
    MUONREC_CHECK(args.beam_width == 0, "recommend: --beam applies to tiger checkpoints only ({} is not one)",
                  checkpoint);
    auto model = load_model_checkpoint(checkpoint, device);
    return recommend(*model, dataset, rows, args.options);
  }
  TigerBundle bundle = load_tiger_checkpoint(file, device);
  TigerGenerateOptions generate;
  auto trained = file.metadata.find("beam_width");
  if (trained != file.metadata.end()) generate.beam_width = std::stoll(trained->second);
  // The history's items take beam slots when filtered: leave room for k others.
  generate.beam_width = args.beam_width > 0 ? args.beam_width : std::max(generate.beam_width, 2 * args.options.k);
  return recommend_tiger(*bundle.model, bundle.catalog, dataset, rows, args.options, generate);
}

}  // namespace

void RecommendCliArgs::add_to(CLI::App* cmd) {
  cmd->add_option("--checkpoint", checkpoint, "checkpoint written by 'muonrec train --checkpoint' (any model)")
      ->required();
  cmd->add_option("--user", users, "user id as in the data file (repeat for several; default: every user)");
  cmd->add_option("--k", options.k, "items per user")->capture_default_str();
  cmd->add_flag("--include-seen{false}", options.filter_seen, "keep items the user already has as candidates");
  cmd->add_option("--beam", beam_width, "tiger: beam width (0: the trained width, at least 2k)")
      ->capture_default_str();
  cmd->add_option("--output", output, "write the TSV here instead of standard output");
  titles.item_text = "none";
  cmd->add_option("--item-text", titles.item_text,
                  "add a title column from Beauty-style side files: PREFIX (PREFIX_item_asin.txt, "
                  "PREFIX_item_titles.txt) or auto (the data file's stem)")
      ->capture_default_str();
  cmd->add_option("--movies", titles.movies, "add a title column from a MovieLens movies.dat");
  cmd->add_option("--movie-map", titles.movie_map, "with --movies: 'item_id MovieID' lines");
}

int run_recommend(const RecommendCliArgs& args, const data::SequenceDataset& dataset, Device device) {
  const std::vector<int64_t> rows = rows_of(dataset, args.users);
  std::vector<std::string> texts;
  if (args.titles.item_text != "none" || !args.titles.movies.empty()) {
    std::string source;
    texts = load_item_texts(dataset, args.titles, &source);
    std::cerr << "titles: " << source << "\n";
  }
  const auto start = Clock::now();
  const std::vector<std::vector<ScoredItem>> lists = recommend_from(args.checkpoint, dataset, rows, args, device);
  const double seconds = seconds_since(start);

  std::ofstream file;
  if (!args.output.empty()) {
    file.open(args.output);
    MUONREC_CHECK(file.good(), "recommend: cannot write {}", args.output);
  }
  std::ostream& out = args.output.empty() ? std::cout : file;
  out << "user\trank\titem\tscore" << (texts.empty() ? "" : "\ttitle") << "\n";
  for (size_t u = 0; u < rows.size(); ++u)
    for (size_t r = 0; r < lists[u].size(); ++r) {
      const ScoredItem& s = lists[u][r];
      out << fmt::format("{}\t{}\t{}\t{:.6g}", dataset.user_ids[rows[u]], r + 1, dataset.item_source_ids[s.item],
                         s.score);
      if (!texts.empty()) out << "\t" << texts[s.item];
      out << "\n";
    }
  MUONREC_CHECK(out.good(), "recommend: writing {} failed", args.output.empty() ? "standard output" : args.output);
  if (!args.output.empty())
    std::cout << fmt::format("recommended up to {} items for {} users in {:.1f} s: {}\n", args.options.k, rows.size(),
                             seconds, args.output);
  return 0;
}

}  // namespace muonrec
