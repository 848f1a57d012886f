// RecBole's atomic interaction files (.inter): a tab-separated header of 'name:type' fields, then
// one event a line. The user_id and item_id columns and, where the file has one, the timestamp column
// are read; the others (rating, review text...) are passed over. Tokens are strings to RecBole: a
// column whose tokens are all non-negative integers keeps them as ids (renumbered later like
// MovieLens ids); any other column (Amazon's reviewer ids and ASINs) is numbered 1, 2, ... in the
// sorted (byte-wise) order of its distinct tokens, and the tokens are kept to name users and items.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/data/tokens.h"

namespace muonrec::data {

// Appends the file's events; returns whether it has a timestamp column. Throws naming the file, the
// line and the field on a malformed header or line.
bool parse_recbole_file(const std::string& path, std::string_view text, std::vector<Event>& events,
                        ReadReport& report, SourceTokens& tokens);

}  // namespace muonrec::data
