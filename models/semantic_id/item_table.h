// Item texts from a table with a header line, for datasets that come with one, keyed by the names
// the interaction file gives its items (ids or tokens):
//   .item (RecBole's atomic item file): tab-separated 'name:type' header; item_id:token names the
//          item; the text is its token and token_seq fields (title, categories, brand...) in column
//          order, joined by spaces; numeric fields (price, sales rank) are passed over
//   .csv / .tsv: the item_id column names the item; every other column is text
#pragma once

#include <string>
#include <unordered_map>

namespace muonrec::semantic_id {

// name -> text. Throws naming the file and line on a header without item_id, a row whose field count
// is not the header's, or an item named twice.
std::unordered_map<std::string, std::string> read_item_table(const std::string& path);

// Whether `path` names such a table (by its extension).
bool is_item_table(const std::string& path);

}  // namespace muonrec::semantic_id
