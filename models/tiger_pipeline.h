// The whole semantic-ID generative retrieval pipeline behind `muonrec train --model tiger`:
//   1. item content vectors: TF-IDF of the item texts projected to a fixed width
//      (semantic_id::embed_item_texts), or the item embeddings of a trained collaborative model;
//   2. the tokenizer fitted on them: RQ-KMeans, or RQ-VAE (the TIGER paper's), levels x codebook plus
//      the disambiguation token;
//   3. a TIGER model trained on the users' histories as semantic-ID tokens (models/tiger_train.h),
//      validated and tested by trie-constrained beam search (models/tiger_generate.h).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/engine/device.h"
#include "muonrec/models/semantic_id/cooccurrence.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/semantic_id/rq_vae.h"
#include "muonrec/models/semantic_id/tfidf.h"
#include "muonrec/models/tiger.h"
#include "muonrec/models/tiger_train.h"

namespace muonrec {

// Where the item vectors come from: a checkpoint if one is given, else `kind`:
//   checkpoint   a muonrec checkpoint's param.item.weight, rows 1..n_items, L2-normalised (collaborative
//                vectors, e.g. from a SASRec run on the same data)
//   kind         "text": the item texts below; "cooccurrence": collaborative vectors from the training
//                part of the sequences alone (semantic_id/cooccurrence.h; no model to train first);
//                "text+cooccurrence": both unit vectors side by side, each scaled by 1/sqrt(2), so an
//                item's code follows what it is and who buys it alike
// The texts, first match wins:
//   texts        item texts given directly ([n_items + 1], index 0 unused)
//   movies       a MovieLens movies.dat; items map to MovieIDs through movie_map: a file ('item_id
//                MovieID' per line), "none" (the dataset's source ids: right for ratings.dat /
//                ratings.csv) or "auto": sas_to_original_items.txt beside the data file when the
//                file's ids were already dense 1..n (the SASRec ML-1M file), else the source ids
//   item_text    an item table (a RecBole .item file, or a .csv / .tsv with an item_id column:
//                semantic_id/item_table.h), joined on the data's item names; or Beauty-style side
//                files P_item_asin.txt and P_item_titles.txt for a prefix P: "auto"
//                takes P = the data file's stem in lower case ("Beauty.txt" -> "beauty"); a prefix is
//                looked up as given, then beside the data file. The ASIN file numbers the source's
//                items: a file muonrec prepare renumbered goes to them through its PREFIX_items.tsv.
//                "none": no text.
struct ItemVectorOptions {
  std::string checkpoint;
  std::vector<std::string> texts;
  std::string movies, movie_map = "auto";
  std::string item_text = "auto";
  bool movie_genres = true;  // MovieLens: the genres as words after the title
  std::string kind = "text";
  semantic_id::TextEmbeddingOptions embedding;   // its width is the width of every kind
  semantic_id::CooccurrenceOptions cooccurrence; // its width and seed are taken from `embedding`
};

struct ItemVectors {
  std::vector<float> values;  // [n_items + 1, dim], row 0 zeros
  int64_t dim = 0;
  std::string source;         // one line for the log
};

// The MovieID of each of the dataset's items (index 0 unused), where they are known: a MovieLens
// file's own ids, or the map found beside the data (sas_to_original_items.txt beside a file numbered
// 1..n, as ml-1m.txt; a prepared file's items map with its movie column); empty otherwise. `prepare`
// writes them into its items map, so a prepared file finds its titles without the source's map.
struct MappedMovieIds {
  std::vector<int64_t> ids;
  std::string map;  // the file read for them ("" for none)
};
MappedMovieIds mapped_movie_ids(const data::SequenceDataset& dataset);

ItemVectors item_content_vectors(const data::SequenceDataset& dataset, const ItemVectorOptions& options);
// The item texts the options name ([n_items + 1], index 0 empty), first match as listed above;
// `source` gets one line for the log (files and how many items have a text). Errors begin with
// `who` and end with `other_choices` (flags besides --item-text and --movies the caller offers).
// The files the options may read item texts or vectors from (some need not exist): no output may
// name one of them.
std::vector<std::string> item_vector_inputs(const data::SequenceDataset& dataset, const ItemVectorOptions& options);

std::vector<std::string> load_item_texts(const data::SequenceDataset& dataset, const ItemVectorOptions& options,
                                         std::string* source, const std::string& who,
                                         const std::string& other_choices = "");

// RQ-KMeans options with balanced assignment on.
inline semantic_id::RqKMeansOptions balanced_tokenizer_options() {
  semantic_id::RqKMeansOptions options;
  options.balanced = true;
  return options;
}

struct TigerPipelineOptions {
  ItemVectorOptions vectors;
  // Balanced assignment by default: more even clusters leave fewer items sharing a code prefix, and
  // on Beauty it beat plain k-means with two of three seeds (mean Recall@10 0.0685 against 0.0649,
  // docs/RESULTS.md).
  semantic_id::RqKMeansOptions tokenizer = balanced_tokenizer_options();
  // "rq-kmeans", or "rq-vae": an RQ-VAE whose levels, codebook size, seed and k-means initialisation
  // (iterations) come from `tokenizer` (its balanced assignment is RQ-KMeans' own).
  std::string tokenizer_kind = "rq-kmeans";
  semantic_id::RqVaeOptions rq_vae;
  TigerConfig model;  // vocab_sizes are taken from the fitted tokenizer
  TigerTrainOptions train;
};

TrainResult run_tiger_pipeline(const data::SequenceDataset& dataset, const TigerPipelineOptions& options,
                               Device device, std::ostream& log);

}  // namespace muonrec
