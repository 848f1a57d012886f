#include "models/training_position.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace muonrec {

std::map<std::string, std::string> TrainingPosition::to_metadata() const {
  return {{"epoch", std::to_string(epoch)},
          {"dropout_offset", std::to_string(dropout_offset)},
          {"best_valid_ndcg10", fmt::format("{:.17g}", best_valid)},
          {"best_epoch", std::to_string(best_epoch)},
          {"best_valid", best_valid_json},
          {"test_metrics", test_at_best_json}};
}

TrainingPosition TrainingPosition::from_metadata(const SafetensorsFile& file) {
  TrainingPosition p;
  auto get = [&](const char* key) -> const std::string& {
    auto it = file.metadata.find(key);
    MUONREC_CHECK(it != file.metadata.end(),
                  "{}: not a training state (no '{}' metadata); resume from a file written by --save-last", file.path,
                  key);
    return it->second;
  };
  p.epoch = std::stoll(get("epoch"));
  p.dropout_offset = std::stoull(get("dropout_offset"));
  p.best_valid = std::stod(get("best_valid_ndcg10"));
  p.best_epoch = std::stoll(get("best_epoch"));
  p.best_valid_json = get("best_valid");
  p.test_at_best_json = get("test_metrics");
  return p;
}

RankingMetrics metrics_from_json(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text);
  RankingMetrics m;
  m.users = j.at("users");
  m.hr1 = j.at("hr1");
  m.hr10 = j.at("hr10");
  m.hr50 = j.at("hr50");
  m.hr200 = j.at("hr200");
  m.ndcg10 = j.at("ndcg10");
  m.ndcg50 = j.at("ndcg50");
  m.ndcg200 = j.at("ndcg200");
  m.mrr = j.at("mrr");
  return m;
}

}  // namespace muonrec
