#include "muonrec/tools/recommend_cli.h"

#include "muonrec/tools/cli_checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "muonrec/engine/error.h"
#include "muonrec/engine/file_replace.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/training_position.h"
#include "muonrec/models/tiger_train.h"
#include "muonrec/models/trainer.h"

namespace muonrec {
namespace {

std::vector<std::vector<ScoredItem>> recommend_from(const std::string& checkpoint, const data::SequenceDataset& dataset,
                                                    const std::vector<int64_t>& rows, const RecommendCliArgs& args,
                                                    Device device) {
  SafetensorsFile file = load_safetensors(checkpoint);
  check_item_numbering(file, dataset);
  std::cerr << time_bias_note(file, dataset);
  if (!is_tiger_checkpoint(file)) {
    MUONREC_CHECK(args.beam_width == 0, "recommend: --beam applies to tiger checkpoints only ({} is not one)",
                  checkpoint);
    auto model = load_model_checkpoint(file, device);
    return recommend(*model, dataset, rows, args.options);
  }
  TigerBundle bundle = load_tiger_checkpoint(file, device);
  TigerGenerateOptions generate;
  // The search excludes the history's items itself, so k beams return k unseen items.
  generate.beam_width =
      args.beam_width > 0 ? args.beam_width : std::max(trained_beam_width(file, generate.beam_width), args.options.k);
  MUONREC_CHECK(generate.beam_width >= args.options.k, "recommend: --beam {} is narrower than --k {}",
                generate.beam_width, args.options.k);
  return recommend_tiger(*bundle.model, bundle.catalog, dataset, rows, args.options, generate);
}

}  // namespace

void RecommendCliArgs::add_to(CLI::App* cmd) {
  cmd->add_option("--checkpoint", checkpoint, "checkpoint written by 'muonrec train --checkpoint' (any model)")
      ->required();
  cmd->add_option("--user", users,
                  "user as the data file names it, id or RecBole token (repeat for several; default: every user)");
  cmd->add_option("--k", options.k, "items per user")->check(kPositive)->capture_default_str();
  cmd->add_flag("--include-seen{false}", options.filter_seen, "keep items the user already has as candidates");
  cmd->add_option("--beam", beam_width, "tiger: beam width, at least k (0: the trained width, at least k)")
      ->check(kNotNegative)->capture_default_str();
  cmd->add_option("--output", output, "write the TSV here instead of standard output");
  titles.item_text = "none";
  titles.movie_genres = false;
  cmd->add_option("--item-text", titles.item_text,
                  "add a title column from Beauty-style side files: PREFIX (PREFIX_item_asin.txt, "
                  "PREFIX_item_titles.txt) or auto (the data file's stem, lower-cased: Beauty.txt -> "
                  "beauty_item_*.txt), or from an item table (a RecBole .item file, or a .csv/.tsv with an item_id "
                  "column)")
      ->capture_default_str();
  CLI::Option* movies =
      cmd->add_option("--movies", titles.movies, "add a title column from a MovieLens movies.dat or movies.csv");
  cmd->add_option("--movie-map", titles.movie_map,
                  "with --movies: 'item_id MovieID' lines; 'auto' takes PREFIX_items.tsv beside a file muonrec "
                  "prepare wrote, or sas_to_original_items.txt beside a data file numbered 1..n; 'none' reads item "
                  "ids as MovieIDs")
      ->needs(movies)
      ->capture_default_str();
}

int run_recommend(const RecommendCliArgs& args, const data::SequenceDataset& dataset, Device device) {
  const std::vector<int64_t> rows = rows_of_users(dataset, args.users);
  if (!args.output.empty()) {
    std::vector<std::string> inputs = item_vector_inputs(dataset, args.titles);  // the titles' files
    inputs.insert(inputs.end(), {args.checkpoint, dataset.source});
    check_output_file("recommend: --output", args.output, inputs);
  }
  std::vector<std::string> titles;
  if (args.titles.item_text != "none" || !args.titles.movies.empty()) {
    std::string source;
    titles = load_item_texts(dataset, args.titles, &source, "recommend --item-text");
    std::cerr << "titles: " << source << "\n";
  }
  const auto start = Clock::now();
  const std::vector<std::vector<ScoredItem>> lists = recommend_from(args.checkpoint, dataset, rows, args, device);
  const double seconds = seconds_since(start);

  if (args.output.empty()) {
    write_recommendations(std::cout, dataset, rows, lists, titles);
    std::cout.flush();
    MUONREC_CHECK(std::cout.good(), "recommend: writing standard output failed");
  } else {  // whole, once made: an error before leaves an existing file as it was
    std::ostringstream text;
    write_recommendations(text, dataset, rows, lists, titles);
    replace_file(args.output, text.str());
  }
  const auto short_lists = std::count_if(lists.begin(), lists.end(), [&](const std::vector<ScoredItem>& list) {
    return static_cast<int64_t>(list.size()) < args.options.k;
  });
  if (short_lists > 0)
    std::cerr << fmt::format("recommend: {} of {} users got fewer than {} items (the catalogue has fewer {}items)\n",
                             short_lists, rows.size(), args.options.k, args.options.filter_seen ? "unseen " : "");
  std::cerr << fmt::format("recommended up to {} items for {} user{} in {:.1f} s{}\n", args.options.k, rows.size(),
                           rows.size() == 1 ? "" : "s",
                           seconds, args.output.empty() ? "" : ": " + args.output);
  return 0;
}

}  // namespace muonrec
