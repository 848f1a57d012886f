#include "data/text_fields.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace muonrec::data {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view field) {
  constexpr size_t kMax = 60;
  if (field.size() > kMax) return fmt::format("'{}...'", field.substr(0, kMax));
  return fmt::format("'{}'", field);
}

std::string read_whole_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) MUONREC_FAIL("cannot read '{}': it is a directory", path);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) MUONREC_FAIL("cannot open '{}': {}", path, std::strerror(errno));
  std::string text;
  char chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof(chunk), f)) > 0) text.append(chunk, got);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) MUONREC_FAIL("cannot read '{}': I/O error", path);
  // A UTF-8 byte order mark (spreadsheet exports) is not part of the first field.
  if (text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
  return text;
}

bool LineCursor::next(std::string_view& line, int64_t& number, std::string_view* untrimmed) {
  if (pos_ >= text_.size()) return false;
  size_t end = text_.find_first_of("\r\n", pos_);
  if (end == std::string_view::npos) end = text_.size();
  line = trim(text_.substr(pos_, end - pos_));
  if (untrimmed) *untrimmed = text_.substr(pos_, end - pos_);
  size_t after_returns = end;
  while (after_returns < text_.size() && text_[after_returns] == '\r') ++after_returns;
  const bool crlf = after_returns < text_.size() && text_[after_returns] == '\n';
  pos_ = crlf ? after_returns + 1 : end + 1;
  number = ++line_number_;
  return true;
}

int64_t parse_int(std::string_view field, const char* what, const Where& where) {
  int64_t value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec == std::errc::result_out_of_range) where.fail(fmt::format("{} {} is out of range", what, quoted(field)));
  if (ec != std::errc() || end != field.data() + field.size() || field.empty())
    where.fail(fmt::format("non-numeric {} {}", what, quoted(field)));
  return value;
}

int64_t parse_user(std::string_view field, const Where& where) {
  int64_t user = parse_int(field, "user id", where);
  if (user < 0) where.fail(fmt::format("user id {} is out of range (must be >= 0)", quoted(field)));
  return user;
}

int64_t parse_source_item(std::string_view field, const Where& where) {
  int64_t item = parse_int(field, "item id", where);
  if (item < 0) where.fail(fmt::format("item id {} is out of range (must be >= 0)", quoted(field)));
  return item;
}

void check_rating(std::string_view field, const Where& where) {
  double value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc() || end != field.data() + field.size() || field.empty())
    where.fail(fmt::format("non-numeric rating {}", quoted(field)));
  if (!std::isfinite(value)) where.fail(fmt::format("rating {} is not a finite number", quoted(field)));
}

void split_whitespace(std::string_view line, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i])) ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
}

void split_on(std::string_view line, std::string_view delimiter, std::vector<std::string_view>& fields) {
  fields.clear();
  for (;;) {
    size_t at = line.find(delimiter);
    fields.push_back(trim(line.substr(0, at)));
    if (at == std::string_view::npos) return;
    line.remove_prefix(at + delimiter.size());
  }
}

}  // namespace muonrec::data
