// The text-level pieces the interaction-file readers share (readers.cpp, recbole.cpp): lines and
// their numbers, fields, numbers parsed with std::from_chars, and errors that name the file, the
// line and the field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "muonrec/engine/error.h"

namespace muonrec::data {

bool is_space(char c);
std::string_view trim(std::string_view s);
// A field quoted for an error message: long garbage (a binary file) is cut short, and control
// bytes are written as \xNN (a NUL would end the message; a carriage return would overwrite it).
std::string quoted(std::string_view field);
// Throws, naming the path and the format, when `bytes` begin like a gzip, bzip2, xz, zstd or zip
// file: read as text, they would fail on garbage somewhere in the first line.
void refuse_compressed(const std::string& path, std::string_view bytes);
// A file's bytes without a UTF-8 byte order mark: memory-mapped when it is a regular file (read at
// page-cache speed, nothing copied; the file must not shrink while it is mapped), else read into
// memory (pipes, empty files). Throws naming the path.
class FileText {
 public:
  explicit FileText(const std::string& path);
  ~FileText();
  FileText(const FileText&) = delete;
  FileText& operator=(const FileText&) = delete;
  std::string_view view() const { return view_; }

 private:
  void* mapping_ = nullptr;
  size_t mapped_bytes_ = 0;
  std::string owned_;
  std::string_view view_;
};

// The whole file as FileText reads it, copied into a string; a compressed file is refused
// (refuse_compressed).
std::string read_whole_file(const std::string& path);

// Walks the lines of a buffer, ended by "\n", "\r\n" or a lone "\r" (old Mac files, which would
// otherwise read as one line whose fields run on across records); the last line needs no ending.
// A run of "\r" before "\n" is one ending: "\r\r\n" is what a CRLF file converted twice holds, and
// an editor shows one line there, so error messages must count it as one.
class LineCursor {
 public:
  explicit LineCursor(std::string_view text) : text_(text) {}
  // The next line, trimmed, and its 1-based number; false at the end. `untrimmed`, where given,
  // gets the line as it stands (without its ending): tab-separated files keep empty last fields.
  bool next(std::string_view& line, int64_t& number, std::string_view* untrimmed = nullptr);

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int64_t line_number_ = 0;
};

// Everything an error message needs to point at the offending spot.
struct Where {
  const std::string& path;
  int64_t line;
  [[noreturn]] void fail(const std::string& problem) const { MUONREC_FAIL("{}, line {}: {}", path, line, problem); }
};

// Whether a data line (`trimmed`, and `untrimmed` as it stands) is blank: tabs trim away, but a line
// of them where rows are tab-separated is a row of empty fields, for the field checks to refuse.
bool is_blank_line(std::string_view trimmed, std::string_view untrimmed, bool tab_separated_rows);

// Throws at `where` when a data line repeats the header line (line `header_line`): files joined
// with their headers. Read as data, it would make an event of the column names.
void refuse_repeated_header(std::string_view line, std::string_view header, int64_t header_line, const Where& where);

// A whole field as an integer; `what` names it in the error ("user id").
int64_t parse_int(std::string_view field, const char* what, const Where& where);
int64_t parse_user(std::string_view field, const Where& where);
// Ids a reader renumbers (MovieLens, RecBole): any non-negative id.
int64_t parse_source_item(std::string_view field, const Where& where);
// The rating is not used (all ratings are implicit events) but a non-number there means the file
// is not what we think it is.
void check_rating(std::string_view field, const Where& where);

// A timestamp in whole seconds, rounded down: a number of seconds (RecBole writes '881250949.0'), or
// an ISO 8601 date or date-time ('2014-03-05', '2014-03-05T17:20:00.25', a space for the 'T', 'Z' or
// a '+HH:MM' / '-HH:MM' offset; none reads as UTC). *second_fraction, where given, receives what the
// rounding dropped, in [0, 1): the readers order the events within a second by it.
int64_t parse_timestamp(std::string_view field, const Where& where, float* second_fraction = nullptr);

void split_whitespace(std::string_view line, std::vector<std::string_view>& fields);
// Fields between delimiters, each trimmed.
void split_on(std::string_view line, std::string_view delimiter, std::vector<std::string_view>& fields);

}  // namespace muonrec::data
