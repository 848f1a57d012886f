// A dataset written back out in the plainest form other tools read, after muonrec's readers and
// preprocessing (time order, --dedupe, --k-core, short users dropped): the PyTorch peer, RecBole and
// muonrec itself then train on exactly the same histories and item numbering.
//   PREFIX.txt          'user i1 i2 ...' a line per user (users 1..U in dataset order, items 1..n,
//                       oldest first): the SASRec/S3-Rec sequences format
//   PREFIX.inter        where the data has timestamps: the same events as a RecBole .inter file
//                       (user_id:token, item_id:token, timestamp:float), which muonrec reads with times
//   PREFIX_users.tsv    'user<TAB>source': each written user id and the source's name for it
//   PREFIX_items.tsv    'item<TAB>source': each written item id and the source's name for it
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace muonrec::data {

// Writes the files above; returns their paths. Throws naming a file that cannot be written.
std::vector<std::string> write_prepared_dataset(const SequenceDataset& dataset, const std::string& prefix);

}  // namespace muonrec::data
