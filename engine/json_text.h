// JSON text for run records, metrics lines and safetensors headers. They carry strings the user
// typed (a command line, file names), which need not be UTF-8: nlohmann's strict dump throws on such
// bytes and would fail the run after it trained, so they are written as U+FFFD instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace muonrec {

inline std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A string as it reads back from json_text: itself when it is UTF-8.
inline std::string as_written_to_json(const std::string& text) {
  return nlohmann::json::parse(json_text(text)).get<std::string>();
}

}  // namespace muonrec
