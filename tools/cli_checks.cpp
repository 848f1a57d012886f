#include "muonrec/tools/cli_checks.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace muonrec {
namespace {

// Why `value` is no decimal integer, where CLI11 would read it as another number: empty (0), with a
// leading zero (octal) or '0x' (hexadecimal). Other text is left to CLI11, which refuses it.
std::string plain_integer(std::string& value) {
  if (value.find_first_not_of(" \t") == std::string::npos) return "expects an integer, got an empty value";
  std::string_view digits = value;
  if (digits.front() == '-' || digits.front() == '+') digits.remove_prefix(1);
  const bool other_base = digits.size() > 1 && digits.front() == '0';
  return other_base ? "expects a decimal integer (a leading 0 reads as octal, 0x as hexadecimal), got '" + value + "'"
                    : "";
}

std::string present_number(std::string& value) {
  return value.find_first_not_of(" \t") == std::string::npos ? "expects a number, got an empty value" : "";
}

// Why a flag's value is no truth value. CLI11 reads any integer as one (`--l2-normalize=3` true,
// `=-1` false) and hands the validator its own "true"/"false" for a flag given without a value, or
// for a negated name's (--sid-unbalanced=yes) value it read.
std::string truth_value(std::string& value) {
  std::string word = value;
  std::transform(word.begin(), word.end(), word.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* accepted : {"true", "false", "yes", "no", "on", "off", "1", "0"})
    if (word == accepted) return "";
  return "expects true or false (yes/no, on/off, 1/0), got '" + value + "'";
}

struct ValueChecks {
  CLI::Validator integer, number, truth;
};

void require_plain_values(CLI::App& app, const ValueChecks& checks) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0) option->check(checks.integer);
    else if (type.rfind("FLOAT", 0) == 0) option->check(checks.number);
    else if (option->get_expected_min() == 0 && option != app.get_help_ptr()) option->check(checks.truth);
  }
  for (CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; }))
    require_plain_values(*command, checks);
}

}  // namespace

void require_plain_values(CLI::App& app) {
  // No description: the flags' help keeps its type names.
  require_plain_values(app, {CLI::Validator(plain_integer, ""), CLI::Validator(present_number, ""),
                             CLI::Validator(truth_value, "")});
}

}  // namespace muonrec
