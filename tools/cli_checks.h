// Checks shared by the command line's subcommands: which flags were typed (CommandLine), and number
// validators with plain messages (CLI11 reads "-1" into an unsigned option as 2^64 - 1, and its own
// PositiveNumber / NonNegativeNumber print their range up to the largest double).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdlib>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "muonrec/engine/error.h"

namespace muonrec {

// A validator that accepts numbers for which `ok(number)` holds and says `requirement` otherwise.
// Text that is no number is left to the option's own conversion, which names it.
template <typename Ok>
CLI::Validator number_check(Ok ok, const std::string& requirement, const std::string& name) {
  return CLI::Validator(
      [ok, requirement](std::string& value) {
        char* end = nullptr;
        const double number = std::strtod(value.c_str(), &end);
        return end != value.c_str() && !ok(number) ? requirement + ", got " + value : std::string();
      },
      name);
}

// The command line as typed. A --config file replays a run's settings, and a flag typed on the
// command line wins over them: where it makes some of the file's settings unread (--optim adamw over
// a Muon run's --muon-lr), those are left unread, while the same flag typed by hand is refused.
struct CommandLine {
  int argc = 0;
  char** argv = nullptr;

  bool gave(const CLI::Option* option) const {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      for (const std::string& name : option->get_lnames())
        if (arg == "--" + name || arg.rfind("--" + name + "=", 0) == 0) return true;
    }
    return false;
  }

  // Two flags that exclude each other (CLI11's excludes() would count a --config file's as typed).
  // Both typed, or both from the file: refused. One typed, the other from the file: the typed one
  // wins: the file's is cleared (so the run's recorded settings leave it out) and drop(it) undoes
  // what it set.
  void resolve_excluding(CLI::Option* a, CLI::Option* b, const std::function<void(const CLI::Option*)>& drop) const {
    // A flag set to false (--no-filter-seen=false) keeps nothing, so it excludes nothing.
    const auto set = [](const CLI::Option* o) {
      return o->count() > 0 && (o->get_expected_min() > 0 || o->as<bool>());
    };
    if (!set(a) || !set(b)) return;
    const bool a_typed = gave(a), b_typed = gave(b);
    MUONREC_CHECK(a_typed != b_typed, "{} excludes {}{}", a->get_name(), b->get_name(),
                  a_typed ? "" : " (both in the --config file)");
    CLI::Option* from_file = a_typed ? b : a;
    from_file->clear();
    drop(from_file);
  }

  // A typed flag the run does not read (`read` false) is an error that names `reader`, the flag or
  // value that would read it, rather than being silently ignored. The flags left unread (a --config
  // file's, or defaults) are noted in `unread`, which the run's record leaves out.
  void refuse_unread(const std::vector<const CLI::Option*>& options, bool read, const char* reader) {
    for (const CLI::Option* option : options) {
      MUONREC_CHECK(read || !gave(option), "{} applies to {} only", option->get_name(), reader);
      if (!read) unread.insert(option->get_single_name());
    }
  }

  std::set<std::string> unread;  // single names ("muon-lr") of the flags refuse_unread found unread
};

inline const CLI::Validator kNotNegative = number_check([](double x) { return x >= 0; }, "must not be negative", "NONNEGATIVE");
inline const CLI::Validator kPositive = number_check([](double x) { return x > 0; }, "must be positive", "POSITIVE");
inline const CLI::Validator kFraction =
    number_check([](double x) { return x >= 0 && x < 1; }, "must be in [0, 1)", "[0, 1)");
inline const CLI::Validator kProbability =
    number_check([](double x) { return x > 0 && x <= 1; }, "must be in (0, 1]", "(0, 1]");

// Every number option of `app` and its subcommands refuses an empty value (CLI11 reads it as 0),
// every integer option one that is not plain decimal (CLI11 reads '010' as octal 8 and '0x10' as 16,
// while the validators read them as 10 and 0), and every flag a value that is no truth value (CLI11
// reads 3 as true and -1 as false): a typed flag or a --config file's value alike.
void require_plain_values(CLI::App& app);

}  // namespace muonrec
