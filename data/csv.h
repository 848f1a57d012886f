// Delimited interaction files with a header line: CSV, TSV or ';'-separated, as exported from a
// database or a pandas DataFrame. The header names the columns; the user and item columns (and a
// timestamp column, where there is one) are read by name, the others (ratings, review text...) are
// passed over. User and item values are tokens (data/tokens.h): integers keep their ids, strings are
// numbered in sorted order and name users and items. Timestamps are seconds or ISO 8601 dates
// (text_fields.h, parse_timestamp). Fields may be quoted, RFC 4180 style ("a, b"; "" for a quote
// inside), but a quoted field may not span lines.
#pragma once

#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "muonrec/data/dataset.h"
#include "muonrec/data/tokens.h"

namespace muonrec::data {

// `columns`: "USER,ITEM" or "USER,ITEM,TIME", the header names of the columns to read; "" reads
// user_id and item_id. Without a TIME, a column called timestamp is read where the header has one.
// The delimiter is the header's (outside quoted names): a tab, else a comma, else a semicolon.
// Appends the events; returns whether they have timestamps. Throws naming the file, the line and the
// field.
bool parse_csv_file(const std::string& path, std::string_view text, const std::string& columns,
                    std::vector<Event>& events, ReadReport& report, SourceTokens& tokens);

// A header line's delimiter, looked for outside quoted names: a tab, else a comma, else a semicolon.
// Throws at `where` when it has none.
char header_delimiter(std::string_view header, const Where& where);

// The fields of one line split at `delimiter`, quoted fields unquoted (an unescaped copy is kept in
// `unescaped` when a field holds a doubled quote; a deque, so the views stay valid while it lives). Unquoted
// fields are trimmed. Throws at `where` on an unterminated quote or text after a closing quote.
void split_delimited(std::string_view line, char delimiter, std::vector<std::string_view>& fields,
                     std::deque<std::string>& unescaped, const Where& where);

}  // namespace muonrec::data
