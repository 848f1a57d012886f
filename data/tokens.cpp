#include "muonrec/data/tokens.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <numeric>
#include <system_error>

namespace muonrec::data {
namespace {

// The token's value when it is a non-negative integer written as one ("7", not "007" or "+7": those
// are names, and reading them as numbers would merge "007" with "07"), else -1.
int64_t integer_value(std::string_view token) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
  const bool whole = ec == std::errc() && end == token.data() + token.size() && value >= 0;
  return whole && std::to_string(value) == token ? value : -1;
}

}  // namespace

std::string SourceTokens::string_columns() const {
  if (!users.empty() && !items.empty()) return "user and item";
  if (!users.empty()) return "user";
  if (!items.empty()) return "item";
  return "";
}

int64_t TokenColumn::intern(std::string_view token, const Where& where) {
  if (token.empty()) where.fail(fmt::format("empty {} token", name_));
  auto [it, inserted] = index_.emplace(token, static_cast<int64_t>(tokens_.size()));
  if (inserted) {
    // Names go out again in TSV files (ranks, recommendations, prepared maps), where a tab or a line
    // break would split the row: a quoted CSV field may hold one, refused here where its line is known.
    if (token.find_first_of("\t\r\n") != std::string_view::npos)
      where.fail(fmt::format("{} token {} holds a tab or a line break, which no TSV output can hold", name_,
                             quoted(token)));
    tokens_.push_back(token);
    if (numeric_) numeric_ = integer_value(token) >= 0;
  }
  return it->second;
}

std::vector<int64_t> TokenColumn::ids(std::vector<std::string>& sorted) const {
  std::vector<int64_t> id(tokens_.size());
  if (numeric_) {
    for (size_t i = 0; i < tokens_.size(); ++i) id[i] = integer_value(tokens_[i]);
    return id;
  }
  std::vector<int64_t> order(tokens_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return tokens_[a] < tokens_[b]; });
  sorted.clear();
  sorted.reserve(order.size());
  for (size_t rank = 0; rank < order.size(); ++rank) {
    id[order[rank]] = static_cast<int64_t>(rank) + 1;
    sorted.emplace_back(tokens_[order[rank]]);
  }
  return id;
}

void resolve_tokens(const TokenColumn& users, const TokenColumn& items, std::vector<Event>& events,
                    size_t first_event, SourceTokens& tokens) {
  const std::vector<int64_t> user_ids = users.ids(tokens.users), item_ids = items.ids(tokens.items);
  for (size_t i = first_event; i < events.size(); ++i) {
    events[i].user = user_ids[static_cast<size_t>(events[i].user)];
    events[i].item = item_ids[static_cast<size_t>(events[i].item)];
  }
}

}  // namespace muonrec::data
