#include "muonrec/tools/config_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>
#include <utility>

#include "muonrec/data/text_fields.h"
#include "muonrec/engine/error.h"

namespace muonrec {
namespace {

// The line without its '#' comment: one outside "basic" and 'literal' strings.
std::string_view without_comment(std::string_view line) {
  char open_quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    if (open_quote) {
      if (line[i] == open_quote) open_quote = 0;
    } else if (line[i] == '"' || line[i] == '\'') {
      open_quote = line[i];
    } else if (line[i] == '#') {
      return line.substr(0, i);
    }
  }
  return line;
}

std::string_view unquoted(std::string_view key) {
  if (key.size() >= 2 && key.front() == '"' && key.back() == '"') return key.substr(1, key.size() - 2);
  return key;
}

}  // namespace

std::string config_file_argument(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" && i + 1 < argc) return argv[i + 1];
    if (arg.rfind("--config=", 0) == 0) return std::string(arg.substr(9));
  }
  return "";
}

std::map<std::string, int64_t> check_config_file(const std::string& path,
                                                 const std::function<std::string(const std::string&)>& flag_of_key) {
  std::map<std::string, int64_t> lines;
  std::ifstream in(path);
  if (!in) return lines;  // CLI11 reports a file it cannot read
  std::map<std::string, std::pair<int64_t, std::string>> first_setting;  // flag -> (line, key as spelt)
  std::string section;
  int64_t number = 0;
  for (std::string text; std::getline(in, text);) {
    ++number;
    MUONREC_CHECK(text.find('\0') == std::string::npos, "{}, line {}: a NUL byte; a config file is text", path, number);
    const std::string_view line = data::trim(without_comment(text));
    if (line.empty()) continue;
    if (line.front() == '[') {
      section = std::string(data::trim(line.substr(1, line.find(']') - 1)));
      continue;
    }
    const size_t equals = line.find('=');
    if (equals == std::string_view::npos) continue;  // CLI11 reports the malformed line
    const std::string key = std::string(section.empty() ? "" : section + ".") +
                            std::string(unquoted(data::trim(line.substr(0, equals))));
    const auto [first, inserted] = first_setting.emplace(flag_of_key(key), std::make_pair(number, key));
    const auto& [first_line, first_key] = first->second;
    MUONREC_CHECK(inserted, "{}, line {}: '{}' is set again (first on line {}{}); a config file sets each flag once",
                  path, number, key, first_line, first_key == key ? "" : ", as '" + first_key + "'");
    lines[first->first] = number;
  }
  return lines;
}

std::string with_config_place(const std::string& message, const std::string& path,
                              const std::map<std::string, int64_t>& lines, int argc, const char* const* argv) {
  const auto typed = [&](const std::string& flag) {
    for (int i = 1; i < argc; ++i) {
      const std::string_view arg = argv[i];
      if (arg == flag || arg.rfind(flag + "=", 0) == 0) return true;
    }
    return false;
  };
  // Where `flag` first appears in the message as a whole word (npos: nowhere).
  const auto named_at = [&](const std::string& flag) {
    for (size_t at = message.find(flag); at != std::string::npos; at = message.find(flag, at + 1)) {
      const size_t end = at + flag.size();
      const bool word_ends = end == message.size() || !(std::isalnum(static_cast<unsigned char>(message[end])) ||
                                                        message[end] == '-' || message[end] == '_');
      if (word_ends) return at;
    }
    return std::string::npos;
  };
  // The file's flag the message names first ("--warmup-steps 500 is not shorter than ... --epochs 2").
  size_t first_at = std::string::npos;
  int64_t first_line = 0;
  for (const auto& [key, line] : lines) {
    const std::string flag = "--" + key.substr(key.find('.') + 1);
    const size_t at = named_at(flag);
    if (typed(flag) || at >= first_at) continue;
    first_at = at;
    first_line = line;
  }
  if (first_at == std::string::npos) return message;
  const size_t end = std::min(message.find('\n'), message.size());
  return message.substr(0, end) + fmt::format(" ({}, line {})", path, first_line) + message.substr(end);
}

TomlConfigReader::TomlConfigReader() {
  comment('\0');  // the comments are gone before CLI11 reads the lines
}

std::vector<CLI::ConfigItem> TomlConfigReader::from_config(std::istream& input) const {
  std::ostringstream uncommented;
  for (std::string line; std::getline(input, line);) uncommented << without_comment(line) << '\n';
  std::istringstream lines(uncommented.str());
  return CLI::ConfigTOML::from_config(lines);
}

}  // namespace muonrec
