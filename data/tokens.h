// User and item columns whose values are tokens (RecBole files, CSV files): integers ("7", not
// "007") stand for themselves, as the other readers' ids do; a column with any other token is
// numbered 1, 2, ... in the sorted (byte-wise) order of its distinct tokens, which are kept to name
// users and items. A token holding a tab or a line break is refused: outputs name users and items in
// TSV files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "muonrec/data/preprocess.h"
#include "muonrec/data/text_fields.h"

namespace muonrec::data {

// The distinct tokens of the string columns, sorted: id k stands for tokens[k - 1]. Empty for a
// column of integer tokens.
struct SourceTokens {
  std::vector<std::string> users, items;
  // "user", "item", "user and item" (the columns read as strings), or "".
  std::string string_columns() const;
};

// A column's distinct tokens in order of first appearance, each event holding its token's index
// until the whole column is seen: only then is it known whether every token is an integer. The
// string_views point into the file's text, which must outlive the column.
class TokenColumn {
 public:
  explicit TokenColumn(const char* name) : name_(name) {}

  // The token's index; an empty token is an error at `where`.
  int64_t intern(std::string_view token, const Where& where);
  // The id of each interned index: the integer itself in a numeric column, else the 1-based rank of
  // the token in sorted order; `sorted` receives the sorted tokens of a string column.
  std::vector<int64_t> ids(std::vector<std::string>& sorted) const;

 private:
  const char* name_;
  std::unordered_map<std::string_view, int64_t> index_;
  std::vector<std::string_view> tokens_;
  bool numeric_ = true;
};

// Turns the token indices the columns gave events[first_event..] into ids, and fills `tokens`.
void resolve_tokens(const TokenColumn& users, const TokenColumn& items, std::vector<Event>& events,
                    size_t first_event, SourceTokens& tokens);

}  // namespace muonrec::data
