#include "muonrec/models/semantic_id/item_table.h"

#include <fmt/format.h>

#include <deque>
#include <filesystem>
#include <vector>

#include "muonrec/data/csv.h"
#include "muonrec/data/text_fields.h"

namespace muonrec::semantic_id {
namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace

bool is_item_table(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".item" || ext == ".csv" || ext == ".tsv";
}

std::unordered_map<std::string, std::string> read_item_table(const std::string& path) {
  const bool recbole = lower_extension(path) == ".item";
  const std::string text = data::read_whole_file(path);
  data::LineCursor cursor(text);
  std::string_view line, untrimmed;
  int64_t number = 0;
  std::vector<std::string_view> fields;
  std::deque<std::string> unescaped;
  char delimiter = '\t';
  size_t item_column = SIZE_MAX, columns = 0;
  std::vector<bool> is_text;
  std::unordered_map<std::string, std::string> texts;
  std::unordered_map<std::string, int64_t> line_of_item;
  // RecBole files have no quoting (a title may begin with a quote); CSV files follow RFC 4180.
  auto split = [&](std::string_view untrimmed_line, const data::Where& where) {
    if (recbole) {
      data::split_on(untrimmed_line, "\t", fields);
    } else {
      data::split_delimited(untrimmed_line, delimiter, fields, unescaped, where);
    }
  };
  while (cursor.next(line, number, &untrimmed)) {
    if (line.empty()) continue;
    const data::Where where{path, number};
    unescaped.clear();
    if (columns == 0) {  // the header
      if (!recbole) delimiter = data::header_delimiter(line, where);
      split(untrimmed, where);
      columns = fields.size();
      for (size_t i = 0; i < fields.size(); ++i) {
        std::string_view name = fields[i], type;
        if (recbole) {
          const size_t colon = name.find(':');
          type = colon == std::string_view::npos ? std::string_view() : name.substr(colon + 1);
          if (type != "token" && type != "token_seq" && type != "float" && type != "float_seq")
            where.fail(fmt::format("expected a RecBole header of tab-separated 'name:type' fields (types token, "
                                   "token_seq, float, float_seq), got {}",
                                   data::quoted(fields[i])));
          name = name.substr(0, colon);
        }
        if (name == "item_id") item_column = i;
        is_text.push_back(name != "item_id" && (!recbole || type == "token" || type == "token_seq"));
      }
      if (item_column == SIZE_MAX)
        where.fail(fmt::format("an item table needs an item_id column naming the items, got {}", data::quoted(line)));
      continue;
    }
    split(untrimmed, where);
    if (fields.size() != columns)
      where.fail(fmt::format("expected {} fields as the header names, got {}", columns, fields.size()));
    const std::string item(fields[item_column]);
    if (item.empty()) where.fail("empty item_id");
    std::string joined;
    for (size_t i = 0; i < fields.size(); ++i)
      if (is_text[i] && !fields[i].empty()) joined += (joined.empty() ? "" : " ") + std::string(fields[i]);
    const auto [previous, fresh] = line_of_item.emplace(item, number);
    if (!fresh) where.fail(fmt::format("item {} already has a row on line {}", data::quoted(item), previous->second));
    texts.emplace(item, std::move(joined));
  }
  MUONREC_CHECK(columns > 0, "{}: an empty item table", path);
  return texts;
}

}  // namespace muonrec::semantic_id
