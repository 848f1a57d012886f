// RecBole's atomic interaction files (.inter): a tab-separated header of 'name:type' fields, then
// one event a line. The user_id and item_id columns (integer tokens; renumbered like MovieLens ids)
// and, where the file has one, the timestamp column are read; the others (rating, review text...)
// are passed over.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"

namespace muonrec::data {

// Appends the file's events; returns whether it has a timestamp column. Throws naming the file, the
// line and the field on a malformed header or line.
bool parse_recbole_file(const std::string& path, std::string_view text, std::vector<Event>& events,
                        ReadReport& report);

}  // namespace muonrec::data
