// Errors: every failure throws muonrec::Error carrying the source location, so the CLI can turn it
// into one readable line and tests can assert on the message.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace muonrec {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void throw_error(const char* file, int line, const std::string& message) {
  throw Error(fmt::format("{} ({}:{})", message, file, line));
}

}  // namespace muonrec

// MUONREC_CHECK(cond, "format {}", args...): throws with the message and location when cond is false.
#define MUONREC_CHECK(cond, ...)                                            \
  do {                                                                      \
    if (!(cond)) ::muonrec::throw_error(__FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
  } while (0)

#define MUONREC_FAIL(...) ::muonrec::throw_error(__FILE__, __LINE__, fmt::format(__VA_ARGS__))
