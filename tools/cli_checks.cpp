#include "muonrec/tools/cli_checks.h"

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

void require_plain_numbers(CLI::App& app, const CLI::Validator& integer, const CLI::Validator& number) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type.rfind("INT", 0) == 0 || type.rfind("UINT", 0) == 0) option->check(integer);
    else if (type.rfind("FLOAT", 0) == 0) option->check(number);
  }
  for (CLI::App* command : app.get_subcommands([](const CLI::App*) { return true; }))
    require_plain_numbers(*command, integer, number);
}

}  // namespace

void require_plain_numbers(CLI::App& app) {
  // No description: the flags' help keeps its type names.
  require_plain_numbers(app, CLI::Validator(plain_integer, ""), CLI::Validator(present_number, ""));
}

}  // namespace muonrec
