#include "muonrec/tools/tiger_cli.h"

#include <fmt/format.h>

#include <iostream>

#include "muonrec/engine/error.h"
#include "muonrec/models/rank_comparison.h"
#include "muonrec/models/run_log.h"
#include "muonrec/models/training_position.h"

namespace muonrec {
namespace {

// "512,256,128" -> {512, 256, 128}; "" -> {}.
std::vector<int64_t> parse_widths(const std::string& text) {
  std::vector<int64_t> widths;
  if (text.empty()) return widths;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string part = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t used = 0;
    int64_t width = 0;
    try {
      width = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MUONREC_CHECK(used == part.size() && !part.empty() && width >= 1,
                  "--rqvae-hidden '{}': '{}' is not a positive width (comma-separated widths, e.g. 512,256,128)",
                  text, part);
    widths.push_back(width);
    if (comma == std::string::npos) return widths;
    start = comma + 1;
  }
}

}  // namespace

std::vector<const CLI::Option*> add_tiger_shape_flags(CLI::App* cmd, semantic_id::RqKMeansOptions& codes,
                                                      TigerConfig& model) {
  return {
      cmd->add_option("--sid-levels", codes.levels, "tiger: RQ-KMeans levels (a disambiguation token follows them)")
          ->check(kPositive)
          ->capture_default_str(),
      cmd->add_option("--sid-codebook", codes.codebook_size, "tiger: centroids per RQ-KMeans level")
          ->check(kPositive)
          ->capture_default_str(),
      cmd->add_option("--sid-history", model.max_items, "tiger: history items the model reads")
          ->check(kPositive)
          ->capture_default_str(),
      cmd->add_option("--encoder-blocks", model.encoder_blocks,
                      "tiger: 0 for the decoder-only model; N > 0 for the paper's encoder-decoder, N bidirectional "
                      "blocks reading the history and --blocks decoder blocks, trained on one example per target "
                      "item")
          ->check(kNotNegative)
          ->capture_default_str()};
}

TigerConfig tiger_config(const ModelConfig& flags, TigerConfig shape) {
  shape.d = flags.d;
  shape.blocks = flags.blocks;
  shape.heads = flags.heads;
  shape.head_dim = flags.head_dim;
  shape.ff = flags.ff;
  shape.dropout = flags.dropout;
  return shape;
}

void TigerCliArgs::add_to(CLI::App* cmd) {
  semantic_id::RqKMeansOptions& sid = pipeline.tokenizer;
  ItemVectorOptions& vectors = pipeline.vectors;
  TigerTrainOptions& train = pipeline.train;
  const size_t registered_before = cmd->get_options().size();
  add_tiger_shape_flags(cmd, sid, pipeline.model);
  cmd->add_option("--sid-iterations", sid.iterations, "tiger: Lloyd iterations per level at most")
      ->check(kNotNegative)
      ->capture_default_str();
  cmd->add_flag("--sid-balanced,!--sid-unbalanced", sid.balanced,
                "tiger: --sid-balanced (the default): balanced k-means assignment, clusters capped at n/k; "
                "--sid-unbalanced: plain nearest-centroid")
      ->default_str(sid.balanced ? "true" : "false");  // CLI11 captures no default of a negatable flag
  balanced = cmd->get_option("--sid-balanced");
  cmd->add_option("--sid-tokenizer", pipeline.tokenizer_kind,
                      "tiger: 'rq-kmeans' (residual k-means of the item vectors) or 'rq-vae' (the TIGER paper's: an "
                      "MLP autoencoder with residual codebooks, trained on the item vectors; --sid-iterations then "
                      "counts its k-means initialisation)")
          ->check(CLI::IsMember({"rq-kmeans", "rq-vae"}))
          ->capture_default_str();
  semantic_id::RqVaeOptions& vae = pipeline.rq_vae;
  rq_vae_options = {
      cmd->add_option("--rqvae-latent", vae.latent, "tiger, rq-vae: width of the latent the codebooks quantise")
          ->check(kPositive)
          ->capture_default_str(),
      cmd->add_option("--rqvae-hidden", rq_vae_hidden,
                      "tiger, rq-vae: the encoder's hidden widths, comma-separated (the decoder mirrors them; "
                      "'' for none)")
          ->capture_default_str(),
      cmd->add_option("--rqvae-epochs", vae.epochs, "tiger, rq-vae: training epochs over the items")
          ->check(kNotNegative)
          ->capture_default_str(),
      cmd->add_option("--rqvae-batch", vae.batch, "tiger, rq-vae: items a step")
          ->check(kPositive)
          ->capture_default_str(),
      cmd->add_option("--rqvae-lr", vae.lr, "tiger, rq-vae: AdamW learning rate")
          ->check(kPositive)
          ->capture_default_str(),
      cmd->add_option("--rqvae-beta", vae.beta, "tiger, rq-vae: commitment weight")
          ->check(kNotNegative)
          ->capture_default_str(),
  };
  CLI::Option* width = cmd->add_option("--sid-width", vectors.embedding.width,
                                       "tiger: width of the item vectors (TF-IDF projection, co-occurrence subspace)")
                           ->check(kPositive)
                           ->capture_default_str();
  cmd->add_option("--beam", train.generate.beam_width, "tiger: beam width = items returned per user")
      ->check(kPositive)
      ->capture_default_str();
  cmd->add_option("--beam-users", train.generate.users_per_chunk, "tiger: users decoded together")
      ->check(kPositive)
      ->capture_default_str();
  CLI::Option* item_text = cmd->add_option("--item-text", vectors.item_text,
                  "tiger: 'auto' (stem_item_asin.txt + stem_item_titles.txt beside the data, stem the data file's "
                  "name lower-cased: Beauty.txt -> beauty_item_*.txt), a prefix "
                  "P (P_item_asin.txt + P_item_titles.txt, as given or beside the data), an item table (a RecBole "
                  ".item file, or a .csv/.tsv with an item_id column), or 'none'")
      ->capture_default_str();
  CLI::Option* kind = cmd->add_option("--item-vectors", vectors.kind,
                  "tiger: what the semantic IDs cluster: 'text' (item texts), 'cooccurrence' (PPMI of the training "
                  "events, no text needed) or 'text+cooccurrence'")
      ->check(CLI::IsMember({"text", "cooccurrence", "text+cooccurrence"}))
      ->capture_default_str();
  CLI::Option* window =
      cmd->add_option("--cooc-window", vectors.cooccurrence.window,
                      "tiger: co-occurrence item vectors pair the events at most N steps apart in a user's training "
                      "sequence")
          ->check(kPositive)
          ->capture_default_str();
  CLI::Option* movies = cmd->add_option(
      "--movies", vectors.movies, "tiger: MovieLens movies.dat or movies.csv for the item texts (title and genres)");
  CLI::Option* movie_map =
      cmd->add_option("--movie-map", vectors.movie_map,
                      "tiger: 'item_id MovieID' map for --movies; 'auto' takes PREFIX_items.tsv beside a file "
                      "muonrec prepare wrote, or sas_to_original_items.txt beside a data file numbered 1..n; 'none' "
                      "reads item ids as MovieIDs")
          ->needs(movies)
          ->capture_default_str();
  // A trained model's item table replaces the other item vectors, their text and their width.
  from_checkpoint = cmd->add_option("--item-vectors-from-checkpoint", vectors.checkpoint,
                                    "tiger: cluster the item embeddings (param.item.weight) of this trained checkpoint "
                                    "instead of text (excludes --item-vectors, --item-text, --movies, --movie-map, "
                                    "--sid-width and --cooc-window)");
  replaced_by_checkpoint = {kind, item_text, movies, movie_map, width, window};
  cooccurrence_options = {window};
  text_options = {item_text, movies, movie_map};
  cmd->add_option("--valid-users", train.valid_users, "tiger: validate on a fixed sample of N users (0: all)")
      ->check(kNotNegative)
      ->capture_default_str();
  cmd->add_option("--test-users", train.test_users, "tiger: test on a fixed sample of N users (0: all)")
      ->check(kNotNegative)
      ->capture_default_str();
  const std::vector<CLI::Option*> all = cmd->get_options();
  options.assign(all.begin() + static_cast<std::ptrdiff_t>(registered_before), all.end());
}

void TigerCliArgs::resolve_flags(CommandLine& typed) {
  // A file's item-vector flag under a typed --item-vectors-from-checkpoint goes back to its default
  // (the checkpoint's vectors replace it, and a resumed run compares the settings it records).
  ItemVectorOptions& vectors = pipeline.vectors;
  for (CLI::Option* replaced : replaced_by_checkpoint)
    typed.resolve_excluding(from_checkpoint, replaced, [&](const CLI::Option* dropped) {
      if (dropped == from_checkpoint) {
        vectors.checkpoint.clear();
      } else {  // every flag it replaces back to its default, the checkpoint kept
        const std::string checkpoint = vectors.checkpoint;
        vectors = ItemVectorOptions();
        vectors.checkpoint = checkpoint;
      }
    });
  typed.refuse_unread(text_options, pipeline.vectors.kind != "cooccurrence",
                      "--item-vectors text or text+cooccurrence");
  typed.refuse_unread(cooccurrence_options, pipeline.vectors.kind != "text",
                      "--item-vectors cooccurrence or text+cooccurrence");
  const bool rq_vae = pipeline.tokenizer_kind == "rq-vae";
  typed.refuse_unread(rq_vae_options, rq_vae, "--sid-tokenizer rq-vae");
  typed.refuse_unread({balanced}, !rq_vae, "--sid-tokenizer rq-kmeans");
  // One option under two names: CLI11 lets the last of them win, so --sid-balanced --sid-unbalanced
  // (or both in a --config file) would run one of them silently.
  MUONREC_CHECK(balanced->count() <= 1, "--sid-balanced / --sid-unbalanced is given {} times (on the command line, "
                "or in a --config file); give one, once", balanced->count());
  pipeline.rq_vae.hidden = parse_widths(rq_vae_hidden);
}

namespace {

// The search returns `beam` items a user; a target outside them is ranked last, so MRR and the
// metrics at cut-offs past the beam (at 10 too, where beam < 10) are lower bounds, unless the beam
// holds the whole catalogue. Said once, not discovered.
void note_beam_cutoff(int64_t beam, int64_t n_items, std::ostream& log) {
  if (beam < n_items)
    log << fmt::format("note: beam {} returns {} of the {} items a user: a target outside them is ranked last, so "
                       "MRR and HR@K and NDCG@K for K > {} are lower bounds (a wider --beam ranks more)\n",
                       beam, beam, n_items, beam);
}

}  // namespace

int run_train_tiger(const data::SequenceDataset& dataset, const ModelConfig& model, const TrainOptions& train,
                    TigerCliArgs args, Device device, bool show_baseline) {
  TigerPipelineOptions& o = args.pipeline;
  o.model = tiger_config(model, o.model);
  o.tokenizer.seed = train.seed;
  o.vectors.embedding.seed = train.seed;
  o.train.train = train;
  std::cout << fmt::format("training: batch {} for {} epochs, seed {}\n", train.batch_size, train.epochs, train.seed);
  note_beam_cutoff(o.train.generate.beam_width, dataset.n_items, std::cout);
  TrainResult result = run_tiger_pipeline(dataset, o, device, std::cout);
  std::cout << result.summary_lines();
  if (show_baseline) {
    RankingMetrics pop = evaluate_popularity(dataset, data::EvalSplit::Test, train.eval);
    std::cout << fmt::format("most-popular baseline{}:  {}\n", o.train.test_users > 0 ? " (every user)" : "",
                             pop.summary());
  }
  std::cout << fmt::format("training time{} {:.1f} s ({} steps, {:.1f} steps/s)\n",
                           train.resume_path.empty() ? "" : " of this invocation", result.train_seconds, result.steps,
                           result.steps / std::max(result.train_seconds, 1e-9));
  std::cout << result.checkpoint_line(train.checkpoint_path);
  return 0;
}

int run_eval_tiger(const SafetensorsFile& file, const data::SequenceDataset& dataset, data::EvalSplit split,
                   const EvalOptions& eval, int64_t beam_width, int64_t users_per_chunk, Device device,
                   const std::string& ranks_path) {
  MUONREC_CHECK(beam_width >= 0, "eval: --beam {} is negative", beam_width);
  check_item_numbering(file, dataset);
  std::cerr << seen_filter_note(file, eval) << parameters_epoch_note(file);
  TigerBundle bundle = load_tiger_checkpoint(file, device);
  TigerEvalOptions o;
  o.filter_seen = eval.filter_seen;
  o.filter_seen_last = eval.filter_seen_last;
  o.generate.beam_width = beam_width > 0 ? beam_width : trained_beam_width(file, o.generate.beam_width);
  if (users_per_chunk > 0) o.generate.users_per_chunk = users_per_chunk;
  // Standard output carries the metrics alone.
  note_beam_cutoff(o.generate.beam_width, dataset.n_items, std::cerr);
  o.generate.progress = users_progress(std::cerr, TrainOptions().progress_seconds, data::split_name(split));
  RankingMetrics m = evaluate_tiger(*bundle.model, bundle.catalog, dataset, split, o);
  std::cout << fmt::format("{} ({}, tiger, beam {}): {}\n", data::split_name(split), file.path,
                           o.generate.beam_width, m.summary());
  std::cout << m.to_json() << "\n";
  if (!ranks_path.empty())
    write_user_ranks(ranks_path, dataset, m, ranks_context(dataset, split, eval, o.generate.beam_width));
  return 0;
}

}  // namespace muonrec
