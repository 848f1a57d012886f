#include "muonrec/data/recbole.h"

#include <fmt/format.h>


#include "muonrec/data/text_fields.h"
#include "muonrec/data/tokens.h"

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
    if (type.find_first_of(" ,;") != std::string_view::npos)
      where.fail(fmt::format("expected a RecBole header of 'name:type' fields separated by tabs, got {} (fields "
                             "separated otherwise?)",
                             quoted(line)));
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

}  // namespace

bool parse_recbole_file(const std::string& path, std::string_view text, std::vector<Event>& events,
                        ReadReport& report, SourceTokens& tokens) {
  LineCursor cursor(text);
  std::string_view line, whole_line;
  int64_t number = 0;
  std::vector<std::string_view> fields;
  Columns columns;
  bool header_seen = false;
  std::string_view header;
  int64_t header_line = 0;
  const size_t first_event = events.size();
  TokenColumn users("user_id"), items("item_id");
  while (cursor.next(line, number, &whole_line)) {
    if (is_blank_line(line, whole_line, /*tab_separated_rows=*/header_seen)) {
      ++report.blank_lines;
      continue;
    }
    Where where{path, number};
    split_on(whole_line, "\t", fields);  // an empty last field is a field
    if (!header_seen) {
      columns = read_header(fields, line, where);
      header_seen = true;
      header = line;
      header_line = number;
      continue;
    }
    refuse_repeated_header(line, header, header_line, where);
    if (fields.size() != columns.count)
      where.fail(fmt::format("expected {} tab-separated fields as the header names, got {}", columns.count,
                             fields.size()));
    const int64_t user = users.intern(fields[columns.user], where);
    const int64_t item = items.intern(fields[columns.item], where);
    float second_fraction = 0;
    const int64_t timestamp =
        columns.timestamp == SIZE_MAX ? 0 : parse_timestamp(fields[columns.timestamp], where, &second_fraction);
    events.push_back({user, item, timestamp, second_fraction});
  }
  report.lines = number;
  resolve_tokens(users, items, events, first_event, tokens);
  return columns.timestamp != SIZE_MAX;
}

}  // namespace muonrec::data
