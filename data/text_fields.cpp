#include "muonrec/data/text_fields.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace muonrec::data {
namespace {

// The UTF-8 byte-order mark that spreadsheet exports put before their first line.
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

bool starts_with_byte_order_mark(std::string_view text) {
  return text.substr(0, kByteOrderMark.size()) == kByteOrderMark;
}

}  // namespace

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view field) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (const char c : field.substr(0, kMax)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f)
      out += fmt::format("\\x{:02x}", byte);
    else
      out += c;
  }
  return out + (field.size() > kMax ? "...'" : "'");
}

void refuse_compressed(const std::string& path, std::string_view bytes) {
  struct Magic {
    std::string_view start;
    const char* format;
  };
  static constexpr Magic kCompressed[] = {{"\x1f\x8b", "gzip"},
                                          {std::string_view("\xfd" "7zXZ\0", 6), "xz"},
                                          {"\x28\xb5\x2f\xfd", "zstd"},
                                          {"PK\x03\x04", "zip"}};
  const char* format = nullptr;
  for (const Magic& magic : kCompressed)
    if (bytes.substr(0, magic.start.size()) == magic.start) format = magic.format;
  // bzip2: "BZh", the block size digit, then the first block's magic (text could begin "BZh").
  if (bytes.size() >= 10 && bytes.substr(0, 3) == "BZh" && bytes[3] >= '1' && bytes[3] <= '9' &&
      bytes.substr(4, 6) == "1AY&SY")
    format = "bzip2";
  if (format) MUONREC_FAIL("{}: a {}-compressed file: decompress it first", path, format);
}

bool is_blank_line(std::string_view trimmed, std::string_view untrimmed, bool tab_separated_rows) {
  return trimmed.empty() && !(tab_separated_rows && untrimmed.find('\t') != std::string_view::npos);
}

void refuse_repeated_header(std::string_view line, std::string_view header, int64_t header_line, const Where& where) {
  // Joined spreadsheet exports repeat the header behind a byte-order mark; read as data, it would
  // turn the id columns into strings.
  const bool behind_mark = starts_with_byte_order_mark(line);
  if (behind_mark) line.remove_prefix(kByteOrderMark.size());
  if (line == header)
    where.fail(fmt::format("the header of line {} again{} (files joined with their headers?): remove it", header_line,
                           behind_mark ? ", behind a byte-order mark" : ""));
}

FileText::FileText(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) MUONREC_FAIL("cannot read '{}': it is a directory", path);
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) MUONREC_FAIL("cannot open '{}': {}", path, std::strerror(errno));
  struct stat status {};
  if (::fstat(fd, &status) == 0 && S_ISREG(status.st_mode) && status.st_size > 0) {
    void* mapping = ::mmap(nullptr, static_cast<size_t>(status.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
    if (mapping != MAP_FAILED) {
      mapping_ = mapping;
      mapped_bytes_ = static_cast<size_t>(status.st_size);
      ::madvise(mapping_, mapped_bytes_, MADV_SEQUENTIAL);
    }
  }
  if (!mapping_) {  // a pipe, an empty file, or a file system that cannot map: read it to its end
    char chunk[1 << 16];
    ssize_t got;
    while ((got = ::read(fd, chunk, sizeof(chunk))) > 0) owned_.append(chunk, static_cast<size_t>(got));
    if (got < 0) {
      const int error = errno;
      ::close(fd);
      MUONREC_FAIL("cannot read '{}': {}", path, std::strerror(error));
    }
  }
  ::close(fd);  // a mapping outlives its descriptor
  view_ = mapping_ ? std::string_view(static_cast<const char*>(mapping_), mapped_bytes_) : std::string_view(owned_);
  // A byte-order mark is not part of the first field.
  if (starts_with_byte_order_mark(view_)) view_.remove_prefix(kByteOrderMark.size());
}

FileText::~FileText() {
  if (mapping_) ::munmap(mapping_, mapped_bytes_);
}

std::string read_whole_file(const std::string& path) {
  const FileText file(path);
  refuse_compressed(path, file.view());
  return std::string(file.view());
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

namespace {

// Days from 1970-01-01 to the proleptic Gregorian date y-m-d, counted in eras of 400 years (146,097
// days each) so that no branch depends on leap-year rules beyond the era's own arithmetic.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t year_of_era = y - era * 400;
  const int64_t day_of_year = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

int64_t days_in_month(int64_t y, int64_t m) {
  static constexpr int64_t kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// The number written by s[pos, pos + count), all digits, or -1.
int64_t digits(std::string_view s, size_t pos, size_t count) {
  if (pos + count > s.size()) return -1;
  int64_t value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

// YYYY-MM-DD[(T| )HH:MM[:SS[.fraction]]][Z|(+|-)HH[:]MM] as seconds since 1970-01-01 UTC.
bool iso_seconds(std::string_view s, int64_t& seconds, double& fraction) {
  fraction = 0;
  const int64_t year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || s.size() < 10 || s[4] != '-' || s[7] != '-' ||
      day > days_in_month(year, month))
    return false;
  int64_t total = days_from_civil(year, month, day) * 86400;
  size_t p = 10;
  if (p == s.size()) {
    seconds = total;
    return true;
  }
  if (s[p] != 'T' && s[p] != ' ') return false;
  const int64_t hour = digits(s, p + 1, 2), minute = digits(s, p + 4, 2);
  if (hour < 0 || hour > 23 || minute < 0 || minute > 59 || p + 3 >= s.size() || s[p + 3] != ':') return false;
  total += hour * 3600 + minute * 60;
  p += 6;
  if (p < s.size() && s[p] == ':') {
    const int64_t second = digits(s, p + 1, 2);
    if (second < 0 || second > 60) return false;  // 60: a leap second
    total += second;
    p += 3;
    if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
      const size_t first_digit = ++p;
      double scale = 0.1;
      for (; p < s.size() && s[p] >= '0' && s[p] <= '9'; ++p, scale /= 10) fraction += (s[p] - '0') * scale;
      if (p == first_digit) return false;
    }
  }
  if (p < s.size() && s[p] == 'Z') {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    const int64_t sign = s[p] == '+' ? 1 : -1;
    const bool colon = p + 3 < s.size() && s[p + 3] == ':';
    const int64_t offset_hours = digits(s, p + 1, 2), offset_minutes = digits(s, p + (colon ? 4 : 3), 2);
    if (offset_hours < 0 || offset_hours > 23 || offset_minutes < 0 || offset_minutes > 59) return false;
    total -= sign * (offset_hours * 3600 + offset_minutes * 60);
    p += colon ? 6 : 5;
  }
  if (p != s.size()) return false;
  seconds = total;
  return true;
}

}  // namespace

int64_t parse_timestamp(std::string_view field, const Where& where, float* second_fraction) {
  float unused = 0;
  float& fraction_out = second_fraction ? *second_fraction : unused;
  fraction_out = 0;
  if (field.size() >= 10 && field[4] == '-') {
    int64_t seconds = 0;
    double fraction = 0;
    if (!iso_seconds(field, seconds, fraction))
      where.fail(fmt::format("timestamp {} is no ISO 8601 date or date-time (YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS], "
                             "then Z or +HH:MM) and no number of seconds",
                             quoted(field)));
    fraction_out = static_cast<float>(std::min(fraction, 0.99999994));  // [0, 1) as a float
    return seconds;
  }
  // Integers exactly (a double holds them only up to 2^53: the 64-bit times a MovieLens file may
  // hold must read back from the files `prepare` writes); fractions and exponents as doubles.
  int64_t whole = 0;
  const auto [whole_end, whole_ec] = std::from_chars(field.data(), field.data() + field.size(), whole);
  if (whole_ec == std::errc() && whole_end == field.data() + field.size() && !field.empty()) return whole;
  double value = 0;
  auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
  if (field.empty() || ec != std::errc() || end != field.data() + field.size() || !std::isfinite(value))
    where.fail(fmt::format("non-numeric timestamp {}", quoted(field)));
  if (std::fabs(value) > 9.0e15) where.fail(fmt::format("timestamp {} is out of range", quoted(field)));
  const double seconds = std::floor(value);
  fraction_out = static_cast<float>(std::min(value - seconds, 0.99999994));
  return static_cast<int64_t>(seconds);
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
