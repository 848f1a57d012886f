// SASRec against the PyTorch fixture (float64 reference stored as float32): hidden state, loss,
// last-position scores and every parameter gradient, on CPU and (where present) on the GPU.
#include "fixture_util.h"

using namespace muonrec;
using muonrec::testkit::check_model_against_fixture;

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
