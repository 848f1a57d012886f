// AdamW against torch.optim.AdamW (shared/fixtures/optim_steps.safetensors): three steps per case,
// each step's parameters to relative error 1e-6, on CPU and on the GPU where present.
#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "optim/adamw.h"
#include "test_util.h"

using namespace muonrec;
using muonrec::testkit::relative_error;

namespace {

void check_adamw_cases(Device device) {
  std::string path = testkit::fixture_path("optim_steps.safetensors");
  SafetensorsFile file = load_safetensors(path);
  auto cases = nlohmann::json::parse(file.metadata.at("cases"));
  int checked = 0;
  for (auto& [name, hp] : cases.items()) {
    if (name.rfind("adamw.", 0) != 0) continue;
    AdamWOptions o;
    o.lr = hp["lr"];
    o.beta1 = hp["betas"][0];
    o.beta2 = hp["betas"][1];
    o.eps = hp["eps"];
    o.weight_decay = hp["weight_decay"];
    Tensor p = file.at(name + ".param0").clone().to(device);
    p.set_requires_grad(true);
    AdamW opt({{"p", p}}, o);
    for (int s = 1; s <= 3; ++s) {
      p.set_grad(file.at(name + ".grad" + std::to_string(s)).clone().to(device));
      opt.step();
      const Tensor& expected = file.at(name + ".param" + std::to_string(s));
      EXPECT_LT(relative_error(p, expected), 1e-6) << name << " step " << s;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace

TEST(AdamWFixture, matches_torch_on_cpu) {
  SKIP_WITHOUT_FIXTURE(testkit::fixture_path("optim_steps.safetensors"));
  check_adamw_cases(Device::CPU);
}

TEST(AdamWFixture, matches_torch_on_gpu) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_FIXTURE(testkit::fixture_path("optim_steps.safetensors"));
  check_adamw_cases(Device::CUDA);
}

TEST(AdamW, skips_parameters_without_gradient_and_rejects_bad_hyperparameters) {
  Tensor a = Tensor::from_f32({1, 2}, {2}).set_requires_grad(true);
  AdamW opt({{"a", a}}, {});
  opt.step();
  EXPECT_EQ(a.to_f32_vector(), (std::vector<float>{1, 2}));
  AdamWOptions bad;
  bad.beta1 = 1.0f;
  EXPECT_THROW(AdamW({{"a", a}}, bad), Error);
}

TEST(AdamW, state_round_trips_through_a_checkpoint) {
  Tensor a = testkit::random_tensor({5}, 1).set_requires_grad(true);
  AdamW opt({{"a", a}}, {});
  a.set_grad(testkit::random_tensor({5}, 2));
  opt.step();
  std::string path = (std::filesystem::temp_directory_path() / "muonrec_adamw_state.safetensors").string();
  save_safetensors(path, opt.state("adamw."));
  Tensor b = a.clone().set_requires_grad(true);
  AdamW restored({{"a", b}}, {});
  restored.load_state(load_safetensors(path), "adamw.");
  EXPECT_EQ(restored.steps(), 1);
  Tensor g = testkit::random_tensor({5}, 3);
  a.set_grad(g);
  b.set_grad(g);
  opt.step();
  restored.step();
  EXPECT_EQ(a.to_f32_vector(), b.to_f32_vector());
  std::filesystem::remove(path);
}
