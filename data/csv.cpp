#include "muonrec/data/csv.h"

#include <fmt/format.h>

#include <algorithm>

#include "muonrec/data/text_fields.h"

namespace muonrec::data {
namespace {

struct Columns {
  size_t count = 0;
  size_t user = 0, item = 0, timestamp = SIZE_MAX;
};

// The positions of the named columns in the header's fields.
Columns find_columns(const std::vector<std::string_view>& header, const std::string& names, const Where& where) {
  std::vector<std::string_view> wanted;
  if (!names.empty()) split_on(names, ",", wanted);
  if (!names.empty() && (wanted.size() < 2 || wanted.size() > 3 ||
                         std::any_of(wanted.begin(), wanted.end(), [](std::string_view w) { return w.empty(); })))
    MUONREC_FAIL("--csv-columns '{}': expected USER,ITEM or USER,ITEM,TIME (the header's names of those columns)",
                 names);
  // Without a named time column, one called "timestamp" is read where the header has it.
  const bool optional_time = wanted.size() < 3;
  if (names.empty()) wanted = {"user_id", "item_id"};
  if (wanted.size() == 2) wanted.push_back("timestamp");
  if (wanted[0] == wanted[1])
    MUONREC_FAIL("--csv-columns '{}': the user and item columns must differ", names);
  auto position = [&](std::string_view name) {
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) {
        if (found != SIZE_MAX) where.fail(fmt::format("the header names the column {} twice", quoted(name)));
        found = i;
      }
    return found;
  };
  Columns columns;
  columns.count = header.size();
  std::string listed;
  for (std::string_view h : header) listed += (listed.empty() ? "" : ", ") + quoted(h);
  const char* what[] = {"user", "item", "timestamp"};
  size_t* slot[] = {&columns.user, &columns.item, &columns.timestamp};
  for (size_t k = 0; k < wanted.size(); ++k) {
    *slot[k] = position(wanted[k]);
    const bool optional = optional_time && k == 2;
    if (*slot[k] == SIZE_MAX && !optional)
      where.fail(fmt::format("no {} column {} in the header (its columns: {}); name the columns with --csv-columns "
                             "USER,ITEM[,TIME]",
                             what[k], quoted(wanted[k]), listed));
  }
  return columns;
}

}  // namespace

char header_delimiter(std::string_view header, const Where& where) {
  bool quoted_run = false, tab = false, comma = false, semicolon = false;
  for (char c : header) {
    if (c == '"') quoted_run = !quoted_run;
    if (quoted_run) continue;
    tab |= c == '\t';
    comma |= c == ',';
    semicolon |= c == ';';
  }
  if (tab) return '\t';
  if (comma) return ',';
  if (semicolon) return ';';
  where.fail(fmt::format("expected a header line of column names separated by tabs, commas or semicolons, got {}",
                         quoted(header)));
}

void split_delimited(std::string_view line, char delimiter, std::vector<std::string_view>& fields,
                     std::deque<std::string>& unescaped, const Where& where) {
  fields.clear();
  size_t pos = 0;
  while (true) {
    while (pos < line.size() && line[pos] != delimiter && is_space(line[pos])) ++pos;
    if (pos < line.size() && line[pos] == '"') {
      const size_t start = ++pos;
      bool doubled = false;
      while (true) {
        const size_t quote = line.find('"', pos);
        if (quote == std::string_view::npos)
          where.fail(fmt::format("unterminated quote in field {} (a quoted field cannot span lines)",
                                 fields.size() + 1));
        if (quote + 1 < line.size() && line[quote + 1] == '"') {
          doubled = true;
          pos = quote + 2;
          continue;
        }
        std::string_view inside = line.substr(start, quote - start);
        if (doubled) {
          std::string& copy = unescaped.emplace_back();
          for (size_t i = 0; i < inside.size(); ++i) {
            copy += inside[i];
            if (inside[i] == '"') ++i;  // "" stands for one quote
          }
          inside = copy;
        }
        fields.push_back(inside);
        pos = quote + 1;
        break;
      }
      while (pos < line.size() && line[pos] != delimiter && is_space(line[pos])) ++pos;
      if (pos < line.size() && line[pos] != delimiter)
        where.fail(fmt::format("text after the closing quote of field {}", fields.size()));
    } else {
      const size_t end = std::min(line.find(delimiter, pos), line.size());
      fields.push_back(trim(line.substr(pos, end - pos)));
      pos = end;
    }
    if (pos >= line.size()) return;
    ++pos;  // the delimiter
  }
}

bool parse_csv_file(const std::string& path, std::string_view text, const std::string& column_names,
                    std::vector<Event>& events, ReadReport& report, SourceTokens& tokens) {
  LineCursor cursor(text);
  std::string_view line;
  int64_t number = 0;
  std::string_view untrimmed;
  std::vector<std::string_view> fields;
  std::deque<std::string> unescaped;  // a line's unescaped fields
  std::deque<std::string> kept;       // the unescaped user and item tokens: they outlive the token columns' views
  // A user or item token unescaped into the line's buffer, copied to one that lives as long as the columns.
  auto lasting = [&](std::string_view token) {
    if (token.data() >= text.data() && token.data() < text.data() + text.size()) return token;
    return std::string_view(kept.emplace_back(token));
  };
  Columns columns;
  char delimiter = ',';
  bool header_seen = false;
  std::string_view header;
  int64_t header_line = 0;
  const size_t first_event = events.size();
  TokenColumn users("user"), items("item");
  while (cursor.next(line, number, &untrimmed)) {
    if (is_blank_line(line, untrimmed, header_seen && delimiter == '\t')) {
      ++report.blank_lines;
      continue;
    }
    const Where where{path, number};
    unescaped.clear();
    if (!header_seen) {
      delimiter = header_delimiter(line, where);
      split_delimited(untrimmed, delimiter, fields, unescaped, where);
      columns = find_columns(fields, column_names, where);
      header_seen = true;
      header = line;
      header_line = number;
      continue;
    }
    refuse_repeated_header(line, header, header_line, where);
    // Untrimmed: a tab-separated line keeps an empty first or last field.
    split_delimited(untrimmed, delimiter, fields, unescaped, where);
    if (fields.size() != columns.count)
      where.fail(fmt::format("expected {} fields as the header names, got {}", columns.count, fields.size()));
    const int64_t user = users.intern(lasting(fields[columns.user]), where);
    const int64_t item = items.intern(lasting(fields[columns.item]), where);
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
