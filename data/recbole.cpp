#include "data/recbole.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <system_error>
#include <unordered_map>

#include "data/text_fields.h"

namespace muonrec::data {
namespace {

struct Columns {
  size_t count = 0;
  size_t user = SIZE_MAX, item = SIZE_MAX, timestamp = SIZE_MAX;
};

Columns read_header(const std::vector<std::string_view>& fields, std::string_view line, const Where& where) {
  Columns columns;
  columns.count = fields.size();
  for (size_t i = 0; i < fields.size(); ++i) {
    const size_t colon = fields[i].find(':');
    if (colon == std::string_view::npos)
      where.fail(fmt::format("expected a RecBole header of tab-separated 'name:type' fields, got {}", quoted(line)));
    const std::string_view name = fields[i].substr(0, colon), type = fields[i].substr(colon + 1);
    size_t* column = name == "user_id" ? &columns.user
                     : name == "item_id" ? &columns.item
                     : name == "timestamp" ? &columns.timestamp
                                           : nullptr;
    if (!column) continue;
    if (*column != SIZE_MAX) where.fail(fmt::format("the header names {} twice", quoted(name)));
    const char* expected = column == &columns.timestamp ? "float" : "token";
    if (type != expected)
      where.fail(fmt::format("{} is '{}:{}', expected '{}:{}'", quoted(fields[i]), name, type, name, expected));
    *column = i;
  }
  if (columns.user == SIZE_MAX || columns.item == SIZE_MAX)
    where.fail(fmt::format("a RecBole .inter header needs user_id:token and item_id:token fields, got {}",
                           quoted(line)));
  return columns;
}

// A column's distinct tokens in order of first appearance, each event holding its token's index
// until the whole column is seen: only then is it known whether every token is an integer.
class TokenColumn {
 public:
  explicit TokenColumn(const char* name) : name_(name) {}

  int64_t intern(std::string_view token, const Where& where) {
    if (token.empty()) where.fail(fmt::format("empty {} token", name_));
    auto [it, inserted] = index_.emplace(token, static_cast<int64_t>(tokens_.size()));
    if (inserted) {
      tokens_.push_back(token);
      if (numeric_) numeric_ = integer_value(token) >= 0;
    }
    return it->second;
  }

  // The id of each interned index: the integer itself in a numeric column, else the 1-based rank of
  // the token in sorted order; `sorted` receives the sorted tokens of a string column.
  std::vector<int64_t> ids(std::vector<std::string>& sorted) const {
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

 private:
  // The token's value when it is a non-negative integer, else -1.
  static int64_t integer_value(std::string_view token) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value);
    return ec == std::errc() && end == token.data() + token.size() && value >= 0 ? value : -1;
  }

  const char* name_;
  std::unordered_map<std::string_view, int64_t> index_;
  std::vector<std::string_view> tokens_;
  bool numeric_ = true;
};

// RecBole writes timestamps as floats; they must be whole seconds, as the other readers' are.
int64_t parse_timestamp(std::string_view field, const Where& where) {
  double value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() || !std::isfinite(value))
    where.fail(fmt::format("non-numeric timestamp {}", quoted(field)));
  if (value != std::floor(value) || std::fabs(value) > 9.0e15)
    where.fail(fmt::format("timestamp {} is not a whole number of seconds", quoted(field)));
  return static_cast<int64_t>(value);
}

}  // namespace

bool parse_recbole_file(const std::string& path, std::string_view text, std::vector<Event>& events,
                        ReadReport& report, RecBoleTokens& tokens) {
  LineCursor cursor(text);
  std::string_view line, whole_line;
  int64_t number = 0;
  std::vector<std::string_view> fields;
  Columns columns;
  bool header_seen = false;
  const size_t first_event = events.size();
  TokenColumn users("user_id"), items("item_id");
  while (cursor.next(line, number, &whole_line)) {
    if (line.empty()) {
      ++report.blank_lines;
      continue;
    }
    Where where{path, number};
    split_on(whole_line, "\t", fields);  // an empty last field is a field
    if (!header_seen) {
      columns = read_header(fields, line, where);
      header_seen = true;
      continue;
    }
    if (fields.size() != columns.count)
      where.fail(fmt::format("expected {} tab-separated fields as the header names, got {}", columns.count,
                             fields.size()));
    const int64_t user = users.intern(fields[columns.user], where);
    const int64_t item = items.intern(fields[columns.item], where);
    const int64_t timestamp =
        columns.timestamp == SIZE_MAX ? 0 : parse_timestamp(fields[columns.timestamp], where);
    events.push_back({user, item, timestamp});
  }
  report.lines = number;
  const std::vector<int64_t> user_ids = users.ids(tokens.users), item_ids = items.ids(tokens.items);
  for (size_t i = first_event; i < events.size(); ++i) {
    events[i].user = user_ids[events[i].user];
    events[i].item = item_ids[events[i].item];
  }
  return columns.timestamp != SIZE_MAX;
}

}  // namespace muonrec::data
