// A dataset written back out in the plainest form other tools read, after muonrec's readers and
// preprocessing (time order, --dedupe, --k-core, short users dropped): the PyTorch peer, RecBole and
// muonrec itself then train on exactly the same histories and item numbering. Items keep the
// dataset's ids unless some id in 1..n_items has no event (a dense file with gaps, the synthetic
// generator): those would not survive a reader, so the items are then renumbered 1..m in id order
// (the items map says which is which).
//   PREFIX.txt          'user i1 i2 ...' a line per user (users 1..U in dataset order, items 1..m,
//                       oldest first): the SASRec/S3-Rec sequences format
//   PREFIX.inter        where the data has timestamps: the same events as a RecBole .inter file
//                       (user_id:token, item_id:token, timestamp:float), which muonrec reads with times
//                       (otherwise an earlier one is removed: the files describe one dataset)
//   PREFIX_users.tsv    'user<TAB>source': each written user id and the source's name for it
//   PREFIX_items.tsv    'item<TAB>source': each written item id and the source's name for it; where
//                       the caller knows the items' MovieIDs (a dense file numbered through a map
//                       beside it, as ml-1m.txt), a third column 'movie' holds them (0: none), so the
//                       prepared file finds its titles without the map the source needed
#pragma once

#include <string>
#include <vector>

#include "muonrec/data/dataset.h"

namespace muonrec::data {

struct PreparedFiles {
  std::vector<std::string> paths;  // the files written
  int64_t unused_item_ids = 0;     // ids without events, left out by renumbering the items
};

// Writes the files above. Throws naming a file that cannot be written, one that is the data file
// itself or another of `inputs` (files read for the dataset, as a movie map), or a user or item name
// holding a tab or a line break (the maps are TSV). item_movie_ids: empty, or the MovieID of each of
// the dataset's items (index 0 unused).
PreparedFiles write_prepared_dataset(const SequenceDataset& dataset, const std::string& prefix,
                                     const std::vector<int64_t>& item_movie_ids = {},
                                     const std::vector<std::string>& inputs = {});

}  // namespace muonrec::data
