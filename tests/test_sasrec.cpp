// SASRec against the PyTorch fixture (float64 reference stored as float32): hidden state, loss,
// last-position scores and every parameter gradient, on CPU and (where present) on the GPU.
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "models/sequential_model.h"
#include "test_util.h"

using namespace muonrec;
using muonrec::testkit::relative_error;

namespace {

ModelConfig config_from_fixture(const SafetensorsFile& file) {
  auto j = nlohmann::json::parse(file.metadata.at("config"));
  ModelConfig c;
  c.kind = j["kind"];
  c.n_items = j["n_items"];
  c.max_len = j["maxlen"];
  c.d = j["d"];
  c.blocks = j["blocks"];
  c.heads = j["heads"];
  c.ff = j["ff"];
  c.dropout = j["dropout"];
  return c;
}

void check_model_against_fixture(const std::string& fixture, Device device) {
  SafetensorsFile file = load_safetensors(fixture);
  ModelConfig config = config_from_fixture(file);
  auto model = make_model(config, device, 1);
  model->parameters().load_from(file, "param.");
  const Tensor& ids = file.at("input.ids");
  const int64_t B = ids.dim(0), T = ids.dim(1);
  std::vector<int64_t> timestamps = file.contains("input.timestamps") ? file.at("input.timestamps").to_i64_vector()
                                                                      : std::vector<int64_t>{};
  SequenceBatch batch = make_sequence_batch(ids.to_i64_vector(), file.at("input.targets").to_i64_vector(), timestamps,
                                            B, T, device);
  PhiloxGenerator gen(0);
  {
    NoGradGuard no_grad;
    Tensor h = model->hidden(batch, false, gen);
    EXPECT_LT(relative_error(h, file.at("output.hidden")), 1e-4) << "hidden";
    std::vector<int64_t> last(B);
    for (int64_t b = 0; b < B; ++b) last[b] = b * T + T - 1;
    Tensor last_h = ops::embedding(h.reshape({B * T, config.d}), Tensor::from_i64(last, {B}, device));
    EXPECT_LT(relative_error(model->scores(last_h), file.at("output.last_scores")), 1e-4) << "last_scores";
  }
  model->parameters().zero_grad();
  Tensor loss = model->loss(batch, false, gen);
  EXPECT_NEAR(loss.item(), file.at("output.loss").item(), 1e-4 * std::fabs(file.at("output.loss").item()));
  backward(loss);
  for (const auto& p : model->parameters().all()) {
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_LT(relative_error(p.tensor.grad(), file.at("grad." + p.name)), 1e-4) << "grad." << p.name;
  }
}

}  // namespace

TEST(SASRecFixture, matches_pytorch_on_cpu) {
  std::string path = testkit::fixture_path("sasrec_tiny.safetensors");
  SKIP_WITHOUT_FIXTURE(path);
  check_model_against_fixture(path, Device::CPU);
}

TEST(SASRecFixture, matches_pytorch_on_gpu) {
  SKIP_WITHOUT_GPU();
  std::string path = testkit::fixture_path("sasrec_tiny.safetensors");
  SKIP_WITHOUT_FIXTURE(path);
  check_model_against_fixture(path, Device::CUDA);
}

TEST(SASRec, parameter_names_follow_the_peer) {
  ModelConfig c;
  c.n_items = 10;
  c.max_len = 4;
  c.d = 8;
  c.blocks = 1;
  c.heads = 2;
  auto model = make_model(c, Device::CPU, 3);
  std::vector<std::string> names;
  for (const auto& p : model->parameters().all()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"item.weight", "pos.weight", "blocks.0.ln1.weight", "blocks.0.ln1.bias",
                                             "blocks.0.qkv.weight", "blocks.0.qkv.bias", "blocks.0.proj.weight",
                                             "blocks.0.proj.bias", "blocks.0.ln2.weight", "blocks.0.ln2.bias",
                                             "blocks.0.fc1.weight", "blocks.0.fc1.bias", "blocks.0.fc2.weight",
                                             "blocks.0.fc2.bias", "ln.weight", "ln.bias"}));
  EXPECT_EQ(model->parameters().find("item.weight").to_f32_vector()[0], 0.0f);  // padding row
  c.heads = 3;
  EXPECT_THROW(make_model(c, Device::CPU, 3), Error);
  c.kind = "nope";
  EXPECT_THROW(make_model(c, Device::CPU, 3), Error);
}
