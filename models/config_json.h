// Reading the fields of a model config written as JSON (checkpoint metadata): one rule for every
// model, so that a field of the wrong kind is an error, never a silently converted value.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <type_traits>

#include "muonrec/engine/error.h"

namespace muonrec {

// Parses a config's JSON text; malformed text is refused, naming `who`.
inline nlohmann::json parse_config_json(const std::string& text, const char* who) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    MUONREC_FAIL("{} is not valid JSON: {}", who, e.what());
  }
}

// Reads field `name` of the object `j` into `out`. Refused, naming `who` and the field: a missing
// field, a value of another type, and a number with a fraction where a whole number belongs
// (nlohmann's conversion would truncate 8.7 to 8).
template <typename T>
void read_config_field(const nlohmann::json& j, const char* name, T& out, const char* who) {
  MUONREC_CHECK(j.contains(name), "{} lacks field '{}'", who, name);
  const nlohmann::json& value = j.at(name);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    MUONREC_CHECK(value.is_number_integer(), "{} field '{}' is {}, not a whole number", who, name, value.dump());
  try {
    value.get_to(out);
  } catch (const nlohmann::json::exception& e) {
    MUONREC_FAIL("{} field '{}': {}", who, name, e.what());
  }
}

}  // namespace muonrec
