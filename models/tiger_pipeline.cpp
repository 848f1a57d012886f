#include "muonrec/models/tiger_pipeline.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>

#include "muonrec/engine/error.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/data/split.h"
#include "muonrec/models/semantic_id/item_table.h"
#include "muonrec/models/semantic_id/item_text.h"
#include "muonrec/models/tiger_batches.h"
#include "muonrec/models/training_position.h"

namespace muonrec {
namespace {

// The map file that comes with the SASRec ML-1M file: 'sasrec_item MovieID' per line.
constexpr const char* kSasrecMovieMap = "sas_to_original_items.txt";

namespace fs = std::filesystem;

ItemVectors vectors_from_checkpoint(const data::SequenceDataset& ds, const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  // A model of other data holds other items' vectors: refused by its item count and numbering.
  check_item_numbering(file, ds);
  auto config = file.metadata.find("config");
  if (config != file.metadata.end()) {
    const nlohmann::json j = nlohmann::json::parse(config->second, nullptr, /*allow_exceptions=*/false);
    MUONREC_CHECK(!j.is_object() || !j.contains("n_items") || j["n_items"] == ds.n_items,
                  "{}: a model of {} items; {} has {}", path, j.value("n_items", int64_t{0}), ds.source, ds.n_items);
  }
  MUONREC_CHECK(file.contains("param.item.weight"),
                "{}: no item table (param.item.weight): item vectors come from a SASRec, BERT4Rec or HSTU checkpoint",
                path);
  const Tensor& table = file.at("param.item.weight");
  MUONREC_CHECK(table.rank() == 2 && table.dim(0) >= ds.n_items + 1,
                "{}: param.item.weight has {} rows; the dataset needs {} (items 1..{} and padding)", path,
                table.rank() == 2 ? table.dim(0) : 0, ds.n_items + 1, ds.n_items);
  ItemVectors out;
  out.dim = table.dim(1);
  std::vector<float> all = table.to_f32_vector();
  out.values.assign(all.begin(), all.begin() + (ds.n_items + 1) * out.dim);
  std::fill(out.values.begin(), out.values.begin() + out.dim, 0.0f);
  // Unit rows: k-means then clusters directions (as with the text vectors), not the norms, which
  // mostly track popularity.
  for (int64_t item = 1; item <= ds.n_items; ++item) {
    float* row = out.values.data() + item * out.dim;
    double norm = 0.0;
    for (int64_t j = 0; j < out.dim; ++j) norm += static_cast<double>(row[j]) * row[j];
    const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (int64_t j = 0; j < out.dim; ++j) row[j] *= inv;
  }
  out.source = fmt::format("collaborative item embeddings from {} (param.item.weight, d={}, L2-normalised)", path,
                           out.dim);
  return out;
}

// P_item_asin.txt and P_item_titles.txt for a prefix P, as given (unless `beside_only`) or beside the
// data file; "" for a file not found. Data that names its items by ASIN needs the titles alone.
std::pair<std::string, std::string> find_side_files(const std::string& data_path, const std::string& prefix,
                                                    bool titles_alone, bool beside_only) {
  std::vector<std::string> candidates;
  if (!beside_only) candidates.push_back(prefix);
  if (!fs::path(prefix).has_parent_path())
    candidates.push_back((fs::path(data_path).parent_path() / prefix).string());
  for (const std::string& p : candidates) {
    const std::string asin = p + "_item_asin.txt", titles = p + "_item_titles.txt";
    if (fs::exists(asin) && fs::exists(titles)) return {asin, titles};
    if (titles_alone && fs::exists(titles)) return {"", titles};
  }
  return {};
}

// muonrec prepare's PREFIX.txt and PREFIX.inter number items their own way; PREFIX_items.tsv beside
// them maps the numbers back to the source's. "" for data without one. A file of another name is no
// prepared file: the source of `prepare --data ml.pairs --output ml` has ml_items.tsv beside it, and
// that map numbers the prepared items, not the source's.
std::string prepared_map_beside(const data::SequenceDataset& dataset) {
  const fs::path data(dataset.source);
  if (data.extension() != ".txt" && data.extension() != ".inter") return "";
  const fs::path prepared_map = data.parent_path() / (data.stem().string() + "_items.tsv");
  return fs::exists(prepared_map) ? prepared_map.string() : "";
}

// The 'item_id MovieID' map --movies reads through ("" = the dataset's source ids). The SASRec ML-1M
// file numbers movies 1..n its own way, and reading those numbers as MovieIDs would give most items
// some other movie's title without a word; the map that comes with it sits beside it and numbers
// exactly the file's items. (A file of MovieIDs beside it, read as they are, has more items than the
// map; MovieLens files hold MovieIDs.)
std::string movie_map_for(const data::SequenceDataset& dataset, const std::string& movie_map) {
  if (movie_map == "none") return "";
  if (movie_map != "auto") return movie_map;
  if (std::string prepared = prepared_map_beside(dataset); !prepared.empty()) return prepared;
  const int64_t file_items = dataset.report.largest_file_item;  // 0 unless a pairs or sequences file
  const fs::path beside = fs::path(dataset.source).parent_path() / kSasrecMovieMap;
  if (file_items == 0 || !fs::exists(beside)) return "";
  const bool numbers_these_items =
      semantic_id::read_item_id_map(beside.string()).size() == static_cast<size_t>(file_items + 1);
  return numbers_these_items ? beside.string() : "";
}

// Values (texts, MovieIDs) indexed by the data file's own item ids, indexed by the dataset's instead:
// the same ids unless the reader renumbered them (source ids of MovieLens and RecBole files, a --k-core).
template <typename T>
std::vector<T> by_dataset_id(std::vector<T> by_file_id, const data::SequenceDataset& dataset) {
  std::vector<T> values(static_cast<size_t>(dataset.n_items + 1));
  for (int64_t item = 1; item <= dataset.n_items; ++item) {
    const auto file_id = static_cast<size_t>(dataset.item_source_ids[item]);
    if (file_id < by_file_id.size()) values[item] = std::move(by_file_id[file_id]);
  }
  return values;
}

// The item ids a side file indexed like the data file may use: a dense file's largest id, or 0 (any:
// a file of source ids may name items no kept user has).
int64_t file_items(const data::SequenceDataset& dataset) { return dataset.report.largest_file_item; }

ItemVectors text_vectors(const data::SequenceDataset& dataset, const ItemVectorOptions& options) {
  std::string source;
  std::vector<std::string> texts =
      load_item_texts(dataset, options, &source, "tiger",
                      ", or cluster no text: --item-vectors cooccurrence, or --item-vectors-from-checkpoint FILE");
  semantic_id::TextEmbeddings e = semantic_id::embed_item_texts(texts, options.embedding);
  ItemVectors out;
  out.values = std::move(e.values);
  out.dim = e.width;
  out.source = fmt::format("{}; TF-IDF of {} words projected to width {} ({} items without words got random "
                           "vectors)",
                           source, e.vocabulary_size, e.width, e.empty_items);
  return out;
}

// Only the training part of each sequence: validation and test events never shape the codes.
ItemVectors cooccurrence_vectors(const data::SequenceDataset& dataset, const ItemVectorOptions& options) {
  std::vector<int64_t> lengths(static_cast<size_t>(dataset.num_users()));
  for (int64_t u = 0; u < dataset.num_users(); ++u) lengths[u] = data::LeaveOneOut::train_length(dataset, u);
  semantic_id::CooccurrenceOptions o = options.cooccurrence;
  o.width = options.embedding.width;
  o.seed = options.embedding.seed;
  semantic_id::CooccurrenceVectors c = semantic_id::cooccurrence_item_vectors(dataset.sequences, lengths,
                                                                              dataset.n_items, o);
  ItemVectors out;
  out.values = std::move(c.values);
  out.dim = c.width;
  out.source = fmt::format("co-occurrence of the training events (window {}, PPMI with {} nonzeros, subspace "
                           "width {} after {} power iterations; {} items without pairs got random vectors)",
                           o.window, c.pairs, c.width, o.power_iterations, c.isolated_items);
  return out;
}

// [a, b] / sqrt(2) row by row: unit rows stay unit rows.
ItemVectors side_by_side(const ItemVectors& a, const ItemVectors& b, int64_t rows) {
  ItemVectors out;
  out.dim = a.dim + b.dim;
  out.values.resize(static_cast<size_t>(rows * out.dim));
  const float scale = 1.0f / std::sqrt(2.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = out.values.data() + r * out.dim;
    for (int64_t j = 0; j < a.dim; ++j) row[j] = a.values[r * a.dim + j] * scale;
    for (int64_t j = 0; j < b.dim; ++j) row[a.dim + j] = b.values[r * b.dim + j] * scale;
  }
  out.source = a.source + " | " + b.source + " (side by side, each scaled by 1/sqrt(2))";
  return out;
}

// "512,256,128": how --rqvae-hidden reads them.
std::string hidden_widths(const std::vector<int64_t>& widths) {
  std::string s;
  for (int64_t w : widths) s += (s.empty() ? "" : ",") + std::to_string(w);
  return s;
}

semantic_id::RqKMeans fit_tokenizer(const ItemVectors& vectors, const TigerPipelineOptions& options, Device device,
                                    std::ostream& log) {
  const int64_t rows = static_cast<int64_t>(vectors.values.size()) / vectors.dim;
  if (options.tokenizer_kind == "rq-kmeans") {
    semantic_id::RqKMeans tokenizer(options.tokenizer);
    tokenizer.fit(vectors.values.data(), rows, vectors.dim);
    log << "semantic IDs: " << tokenizer.report().summary() << "\n" << std::flush;
    return tokenizer;
  }
  MUONREC_CHECK(options.tokenizer_kind == "rq-vae", "tiger: unknown tokenizer '{}' (rq-kmeans, rq-vae)",
                options.tokenizer_kind);
  semantic_id::RqVaeOptions rq_vae = options.rq_vae;
  rq_vae.levels = options.tokenizer.levels;
  rq_vae.codebook_size = options.tokenizer.codebook_size;
  rq_vae.kmeans_iterations = options.tokenizer.iterations;
  rq_vae.seed = options.tokenizer.seed;
  semantic_id::RqVaeReport report;
  semantic_id::RqKMeans tokenizer =
      semantic_id::fit_rq_vae(vectors.values.data(), rows, vectors.dim, rq_vae, device, &log, &report);
  log << "semantic IDs: " << report.summary() << "; " << tokenizer.report().prefix_summary() << "\n" << std::flush;
  return tokenizer;
}

}  // namespace

MappedMovieIds mapped_movie_ids(const data::SequenceDataset& dataset) {
  if (dataset.format == data::Format::MovieLensDat || dataset.format == data::Format::MovieLensCsv)
    return {dataset.item_source_ids, ""};  // MovieLens files name their items by MovieID
  const std::string map = movie_map_for(dataset, "auto");
  if (map.empty() || semantic_id::item_id_map_holds_source_ids(map)) return {};
  return {by_dataset_id(semantic_id::read_item_id_map(map, file_items(dataset)), dataset), map};
}

namespace {

// The side files' prefix --item-text auto takes: the data file's stem in lower case ("Beauty.txt" ->
// "beauty"), looked up beside the data.
std::string auto_side_file_prefix(const data::SequenceDataset& ds) {
  std::string prefix = fs::path(ds.source).stem().string();
  std::transform(prefix.begin(), prefix.end(), prefix.begin(), [](unsigned char c) { return std::tolower(c); });
  return prefix;
}

// The source's names of the data's items where muonrec prepare renumbered them ({} otherwise): an
// ASIN file numbers the source's items, never the prepared file's.
std::vector<std::string> prepared_item_sources(const data::SequenceDataset& ds) {
  const std::string map = prepared_map_beside(ds);
  return map.empty() ? std::vector<std::string>{}
                     : by_dataset_id(semantic_id::read_prepared_item_sources(map), ds);
}

// An id a source may number its items by (18 digits fit an int64_t).
bool is_integer(const std::string& s) {
  return !s.empty() && s.size() <= 18 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Whether the source muonrec prepare read named its items by ASIN (sources: prepared_item_sources).
bool sources_are_names(const std::vector<std::string>& sources) {
  return std::any_of(sources.begin(), sources.end(), [](const std::string& s) { return !s.empty() && !is_integer(s); });
}

// The titles of the data's items: joined on their ASINs (the data's tokens, or the names of the
// source muonrec prepare read), or on the ASINs the id file gives their source ids. Appends how the
// items were matched to *source.
std::vector<std::string> titles_of_items(const data::SequenceDataset& ds, const std::vector<std::string>& sources,
                                         const std::string& asin_path, const std::string& titles_path,
                                         semantic_id::ItemTextReport* report, std::string* source) {
  if (!ds.item_tokens.empty()) {
    *source += "by the data's item tokens; ";
    return semantic_id::load_titles_by_asin(titles_path, ds.item_tokens, report);
  }
  if (sources_are_names(sources)) {
    *source += fmt::format("by the source's item tokens in {}; ", prepared_map_beside(ds));
    return semantic_id::load_titles_by_asin(titles_path, sources, report);
  }
  // A prepared file's ids are its own; the id file numbers the source's items, which may reach past them.
  const int64_t largest_id = sources.empty() ? file_items(ds) : 0;
  int64_t beyond_data = 0;
  const std::unordered_map<int64_t, std::string> asins =
      semantic_id::read_item_asins(asin_path, largest_id, &beyond_data);
  std::vector<std::string> item_asins(static_cast<size_t>(ds.n_items + 1));
  for (int64_t item = 1; item <= ds.n_items; ++item) {
    if (!sources.empty() && sources[item].empty()) continue;  // an item the map does not name
    const int64_t id = sources.empty() ? ds.item_source_ids[item] : std::stoll(sources[item]);
    if (auto it = asins.find(id); it != asins.end()) item_asins[item] = it->second;
  }
  if (!sources.empty()) *source += fmt::format("by the source's item ids in {}; ", prepared_map_beside(ds));
  if (beyond_data > 0)
    *source += fmt::format("{} ids past the data's largest item {} skipped; ", beyond_data, largest_id);
  return semantic_id::load_titles_by_asin(titles_path, item_asins, report);
}

}  // namespace

std::vector<std::string> item_vector_inputs(const data::SequenceDataset& ds, const ItemVectorOptions& o) {
  std::vector<std::string> inputs = {o.checkpoint, o.movies, o.movies.empty() ? "" : movie_map_for(ds, o.movie_map)};
  if (semantic_id::is_item_table(o.item_text)) {
    inputs.push_back(o.item_text);
  } else if (o.item_text != "none") {
    const std::string prefix = o.item_text == "auto" ? auto_side_file_prefix(ds) : o.item_text;
    for (const std::string& p : {prefix, (fs::path(ds.source).parent_path() / prefix).string()})
      inputs.insert(inputs.end(), {p + "_item_asin.txt", p + "_item_titles.txt"});
  }
  return inputs;
}

std::vector<std::string> load_item_texts(const data::SequenceDataset& ds, const ItemVectorOptions& o,
                                         std::string* source, const std::string& who,
                                         const std::string& other_choices) {
  semantic_id::ItemTextReport report;
  std::vector<std::string> texts;
  if (!o.texts.empty()) {
    MUONREC_CHECK(static_cast<int64_t>(o.texts.size()) == ds.n_items + 1,
                  "item texts: {} given for {} items (expected n_items + 1, index 0 unused)", o.texts.size(),
                  ds.n_items);
    *source = "item texts given by the caller";
    return o.texts;
  }
  // Both name the item texts: one would be read and the other silently not.
  MUONREC_CHECK(o.movies.empty() || o.item_text == "auto" || o.item_text == "none",
                "{}: --movies {} and --item-text {} both name the item texts: give one of them", who, o.movies,
                o.item_text);
  if (!o.movies.empty()) {
    MUONREC_CHECK(ds.item_tokens.empty(), "{}: --movies reads item ids as MovieIDs, and {} names its items by "
                  "string tokens", who, ds.source);
    semantic_id::MovieTextOptions movie;
    movie.append_genres = o.movie_genres;
    const bool movie_ids = ds.format == data::Format::MovieLensDat || ds.format == data::Format::MovieLensCsv;
    MUONREC_CHECK(!movie_ids || o.movie_map == "auto" || o.movie_map == "none",
                  "{}: --movie-map {} maps item ids to MovieIDs, and {} names its items by MovieID already: leave "
                  "--movie-map out",
                  who, o.movie_map, ds.source);
    const std::string map = movie_map_for(ds, o.movie_map);
    if (map.empty()) {
      texts = semantic_id::load_movielens_item_texts(o.movies, ds.item_source_ids, movie, &report);
    } else {  // the map numbers the file's items: the texts follow them to the dataset's ids
      texts = by_dataset_id(
          semantic_id::load_movielens_item_texts_mapped(o.movies, map, file_items(ds), movie, &report), ds);
      semantic_id::count_item_texts(texts, report.unused_records, &report);
    }
    std::string via = map.empty() ? " (item ids as MovieIDs)" : " via " + map;
    if (!map.empty() && o.movie_map == "auto")
      via += " (found beside the data; --movie-map none reads ids as MovieIDs)";
    *source = fmt::format("{}{}; {}", o.movies, via, report.summary());
  } else if (semantic_id::is_item_table(o.item_text)) {
    std::vector<std::string> names(static_cast<size_t>(ds.n_items + 1));
    for (int64_t item = 1; item <= ds.n_items; ++item) names[item] = ds.item_name(item);
    const auto table = semantic_id::read_item_table(o.item_text);
    texts = semantic_id::join_texts_by_name(table, names, &report);
    // A table keyed otherwise (source ids against a prepared file's dense ids, say) would leave every
    // item without text, and the item vectors random, without a word.
    MUONREC_CHECK(table.empty() || report.unused_records < static_cast<int64_t>(table.size()),
                  "{}: {} names none of the data's items (the data names them like '{}'; the table like '{}')", who,
                  o.item_text, names.size() > 1 ? names[1] : "", table.empty() ? "" : table.begin()->first);
    *source = fmt::format("{} by the data's item names; {}", o.item_text, report.summary());
  } else {
    MUONREC_CHECK(o.item_text != "none", "{} needs item texts: give --item-text PREFIX or --movies FILE{}", who,
                  other_choices);
    std::string prefix = o.item_text;
    MUONREC_CHECK(prefix != "auto" || fs::exists(ds.source),
                  "{} needs item texts, and {} is no file to find them beside: give --item-text PREFIX or --movies "
                  "FILE{}",
                  who, ds.source, other_choices);
    const bool found_by_stem = prefix == "auto";  // beside the data, never in the working directory
    if (found_by_stem) prefix = auto_side_file_prefix(ds);
    const std::vector<std::string> sources = prepared_item_sources(ds);
    const bool named_by_asin = !ds.item_tokens.empty() || sources_are_names(sources);  // the titles alone do
    auto [asin, titles] = find_side_files(ds.source, prefix, named_by_asin, found_by_stem);
    MUONREC_CHECK(!titles.empty(),
                  "{}: no item texts found for {} ({}_item_asin.txt and {}_item_titles.txt, as given or beside "
                  "the data file); give --item-text PREFIX or --movies FILE{}",
                  who, ds.source, prefix, prefix, other_choices);
    *source = fmt::format("{}{}{}; ", asin, asin.empty() ? "" : " + ", titles);
    texts = titles_of_items(ds, sources, asin, titles, &report, source);
    *source += report.summary();
  }
  return texts;
}

ItemVectors item_content_vectors(const data::SequenceDataset& dataset, const ItemVectorOptions& options) {
  if (!options.checkpoint.empty()) return vectors_from_checkpoint(dataset, options.checkpoint);
  if (options.kind == "text") return text_vectors(dataset, options);
  if (options.kind == "cooccurrence") return cooccurrence_vectors(dataset, options);
  MUONREC_CHECK(options.kind == "text+cooccurrence",
                "item vectors: unknown kind '{}' (text, cooccurrence, text+cooccurrence)", options.kind);
  return side_by_side(text_vectors(dataset, options), cooccurrence_vectors(dataset, options), dataset.n_items + 1);
}

TrainResult run_tiger_pipeline(const data::SequenceDataset& dataset, const TigerPipelineOptions& options,
                               Device device, std::ostream& log) {
  // Before minutes of item vectors and k-means.
  options.train.train.check("tiger train");
  options.model.check_shape();
  check_tiger_has_examples(dataset, options.model);
  std::vector<std::string> inputs = item_vector_inputs(dataset, options.vectors);
  inputs.push_back(dataset.source);
  options.train.train.check_output_files(inputs);
  semantic_id::RqKMeans tokenizer(options.tokenizer);
  const std::string& resume = options.train.train.resume_path;
  if (resume.empty()) {
    ItemVectors vectors = item_content_vectors(dataset, options.vectors);
    log << "item vectors: " << vectors.source << "\n";
    tokenizer = fit_tokenizer(vectors, options, device, log);
  } else {
    // The codes the model was trained on, not a refit (item vectors may draw differently).
    SafetensorsFile state = load_safetensors(resume);
    MUONREC_CHECK(is_tiger_checkpoint(state), "{}: not a tiger training state (its config has no kind 'tiger')",
                  resume);
    check_state_data(state, dataset);
    tokenizer = with_checkpoint_named(
        state, [&] { return semantic_id::RqKMeans::from_state_dict(state.tensors, "semantic_id.", state.metadata); });
    log << fmt::format("semantic IDs: the tokenizer of {} ({} levels)\n", resume, tokenizer.levels()) << std::flush;
  }

  TigerConfig config = options.model;
  config.vocab_sizes = tokenizer.vocab_sizes();
  TigerCatalog catalog = TigerCatalog::from_codes(tokenizer.item_codes(), tokenizer.n_items(), config.vocab_sizes);
  TigerModel model(config, device, options.train.train.seed);
  log << fmt::format("model: {}; beam {}\n", describe_tiger_model(model), options.train.generate.beam_width);
  // A resumed run reads the state's codes: flags asking for other ones would go unheard. (Files by
  // name: a resumed run may run from another directory.)
  TigerTrainOptions train = options.train;
  const ItemVectorOptions& v = options.vectors;
  auto file_name = [](const std::string& path) { return fs::path(path).filename().string(); };
  train.train.fixed_settings.insert({{"sid-levels", std::to_string(options.tokenizer.levels)},
                                     {"sid-codebook", std::to_string(options.tokenizer.codebook_size)},
                                     {"sid-iterations", std::to_string(options.tokenizer.iterations)},
                                     {"sid-tokenizer", options.tokenizer_kind},
                                     {"sid-width", std::to_string(v.embedding.width)},
                                     {"cooc-window", std::to_string(v.cooccurrence.window)},
                                     {"item-vectors", v.kind},
                                     {"item-text", file_name(v.item_text)},
                                     {"movies", file_name(v.movies)},
                                     {"movie-map",
                                      v.movies.empty() ? "" : file_name(movie_map_for(dataset, v.movie_map))},
                                     {"item-vectors-from-checkpoint", file_name(v.checkpoint)}});
  if (options.tokenizer_kind == "rq-kmeans")
    train.train.fixed_settings.insert({"sid-balanced", options.tokenizer.balanced ? "true" : "false"});
  if (options.tokenizer_kind == "rq-vae") {
    const semantic_id::RqVaeOptions& q = options.rq_vae;
    train.train.fixed_settings.insert({{"rqvae-latent", std::to_string(q.latent)},
                                       {"rqvae-hidden", hidden_widths(q.hidden)},
                                       {"rqvae-epochs", std::to_string(q.epochs)},
                                       {"rqvae-batch", std::to_string(q.batch)},
                                       {"rqvae-lr", fmt::format("{}", q.lr)},
                                       {"rqvae-beta", fmt::format("{}", q.beta)}});
  }
  return train_tiger(model, catalog, dataset, train, log, &tokenizer);
}

}  // namespace muonrec
