// Serving a trained model: the top-K next items for users given their whole histories (every event,
// the held-out ones included), as a deployed recommender would rank them. The same scores as the
// evaluation (full ranking for the sequential models, constrained beam search for TIGER), with the
// user's own items left out unless filter_seen is off.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/models/sequential_model.h"
#include "muonrec/models/tiger.h"
#include "muonrec/models/tiger_generate.h"

namespace muonrec {

struct ScoredItem {
  int64_t item = 0;    // dense item id, 1..n_items (data::SequenceDataset::item_source_ids maps it back)
  float score = 0.0f;  // the model's score: a logit, or for TIGER the code's log-probability
};

struct RecommendOptions {
  int64_t k = 10;
  bool filter_seen = true;   // leave out the items of the user's history
  int64_t batch_size = 256;  // users scored together (sequential models)
};

// The k highest scores[c] (item c+1), descending, ties by ascending item id, without `excluded` items.
std::vector<ScoredItem> top_k_items(const float* scores, int64_t n_items, int64_t k,
                                    const std::vector<int64_t>& excluded);

// For each dataset row in `rows`: the top options.k items after the row's whole sequence.
std::vector<std::vector<ScoredItem>> recommend(SequentialModel& model, const data::SequenceDataset& dataset,
                                               const std::vector<int64_t>& rows, const RecommendOptions& options);

// TIGER: the beam's items in order, at most k. With options.filter_seen the search excludes the
// history's items, so a beam at least k wide returns k items whenever k unseen ones exist.
std::vector<std::vector<ScoredItem>> recommend_tiger(TigerModel& model, const TigerCatalog& catalog,
                                                     const data::SequenceDataset& dataset,
                                                     const std::vector<int64_t>& rows, const RecommendOptions& options,
                                                     const TigerGenerateOptions& generate);

// The dataset rows of the given users, named as the data file names them (ids, or tokens where the
// file's user ids are strings); every row when `users` is empty. Throws naming a user the dataset does
// not hold.
std::vector<int64_t> rows_of_users(const data::SequenceDataset& dataset, const std::vector<std::string>& users);

// A header and "user<TAB>rank<TAB>item<TAB>score[<TAB>title]" lines (rank from 1) in the data's own
// names (data::SequenceDataset::user_name, item_name); `titles` ([n_items + 1], optional) adds the last column, tabs
// and line breaks as spaces.
void write_recommendations(std::ostream& out, const data::SequenceDataset& dataset, const std::vector<int64_t>& rows,
                           const std::vector<std::vector<ScoredItem>>& lists,
                           const std::vector<std::string>& titles = {});

}  // namespace muonrec
