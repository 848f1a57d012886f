// AdamW against torch.optim.AdamW (shared/fixtures/optim_steps.safetensors): three steps per case,
// each step's parameters to relative error 1e-6, on CPU and on the GPU where present.
#include <array>
#include <cmath>
#include <nlohmann/json.hpp>

#include "muonrec/engine/precision.h"
#include "muonrec/engine/safetensors.h"
#include "muonrec/models/module.h"
#include "muonrec/optim/adamw.h"
#include "muonrec/optim/muon.h"
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
}

// Each refused setting is named with its value (the CLI's flags map one to one onto these fields).
TEST(AdamW, refuses_each_unusable_hyperparameter_by_name) {
  Tensor a = Tensor::from_f32({1, 2}, {2}).set_requires_grad(true);
  const auto refused = [&](void (*set)(AdamWOptions&), const std::vector<std::string>& parts) {
    AdamWOptions o;
    set(o);
    testkit::expect_error([&] { AdamW({{"a", a}}, o); }, parts);
  };
  refused([](AdamWOptions& o) { o.beta1 = 1.0f; }, {"adamw: beta1 must be in [0, 1), got 1"});
  refused([](AdamWOptions& o) { o.beta2 = -0.5f; }, {"adamw: beta2 must be in [0, 1), got -0.5"});
  refused([](AdamWOptions& o) { o.eps = 0.0f; }, {"adamw: eps must be a finite number > 0, got 0"});
  refused([](AdamWOptions& o) { o.lr = INFINITY; }, {"adamw: the learning rate must be a finite number >= 0, got inf"});
  refused([](AdamWOptions& o) { o.weight_decay = NAN; }, {"adamw: weight decay must be a finite number >= 0"});
  refused([](AdamWOptions& o) { o.weight_decay = 1500.0f; },
          {"learning rate 0.001 x weight decay 1500 is not below 1", "scale the weights by -0.5"});
  const auto muon_refused = [&](void (*set)(MuonOptions&), const std::vector<std::string>& parts) {
    MuonOptions o;
    set(o);
    Tensor m = Tensor::zeros({2, 2}).set_requires_grad(true);
    testkit::expect_error([&] { Muon({{"m", m}}, o); }, parts);
  };
  muon_refused([](MuonOptions& o) { o.momentum = 1.0f; }, {"muon: momentum must be in [0, 1), got 1"});
  muon_refused([](MuonOptions& o) { o.lr = -1.0f; }, {"muon: the learning rate must be a finite number >= 0, got -1"});
  muon_refused([](MuonOptions& o) { o.weight_decay = 100.0f; }, {"muon: learning rate 0.02 x weight decay 100"});
}

TEST(AdamW, state_round_trips_through_a_checkpoint) {
  Tensor a = testkit::random_tensor({5}, 1).set_requires_grad(true);
  AdamW opt({{"a", a}}, {});
  a.set_grad(testkit::random_tensor({5}, 2));
  opt.step();
  std::string path = testkit::scratch_path("adamw_state.safetensors");
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
  // A step count of another shape, type or sign is refused naming the file and the tensor (an empty
  // one used to be read past its end).
  std::map<std::string, Tensor> state = opt.state("adamw.");
  const std::vector<Tensor> bad_steps = {Tensor::from_i64({}, {0}), Tensor::from_f32({1.0f}, {1}),
                                         Tensor::from_i64({-3}, {1})};
  for (const Tensor& bad_step : bad_steps) {
    state["adamw.step"] = bad_step;
    save_safetensors(path, state);
    testkit::expect_error([&] { restored.load_state(load_safetensors(path), "adamw."); }, {path, "'adamw.step'"});
  }
  // Moments that are not finite, or a negative second moment, would make the first resumed step NaN
  // (blamed on the learning rate): refused naming the element.
  state = opt.state("adamw.");
  state["adamw.exp_avg_sq.a"] = Tensor::from_f32({0.1f, 0.2f, -1.0f, 0.3f, 0.4f}, {5});
  save_safetensors(path, state);
  testkit::expect_error([&] { restored.load_state(load_safetensors(path), "adamw."); },
                        {path + ": optimizer state 'adamw.exp_avg_sq.a' holds -1 at element 2, below 0"});
  state = opt.state("adamw.");
  state["adamw.exp_avg.a"] = Tensor::from_f32({0.1f, NAN, 0.0f, 0.3f, 0.4f}, {5});
  save_safetensors(path, state);
  testkit::expect_error([&] { restored.load_state(load_safetensors(path), "adamw."); },
                        {path + ": optimizer state 'adamw.exp_avg.a' holds nan at element 1 (a damaged file"});
}

// A resumed run loads the parameters, then the optimizer state: the bf16 copy must then follow the
// loaded parameters, not the ones the optimizer was made with.
TEST(AdamW, load_state_refreshes_the_bf16_copy_from_the_loaded_parameters) {
  AdamWOptions o;
  o.bf16_copy = true;
  Tensor trained = testkit::random_tensor({6}, 1).set_requires_grad(true);
  AdamW opt({{"a", trained}}, o);
  trained.set_grad(testkit::random_tensor({6}, 2));
  opt.step();
  testkit::TempDir dir;
  const std::string path = dir.path("state.safetensors");
  save_safetensors(path, opt.state("adamw."));
  Tensor fresh = Tensor::zeros({6}).set_requires_grad(true);
  AdamW resumed({{"a", fresh}}, o);
  fresh.copy_from(trained);
  resumed.load_state(load_safetensors(path), "adamw.");
  EXPECT_EQ(resumed.bf16_copy(0).to_f32_vector(), trained.to_dtype(DType::BF16).to_f32_vector());
}

// One AdamW step on one scalar, torch.optim.AdamW's rule: p <- p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps).
float one_adamw_step(float p0, float g, float lr, float weight_decay, float eps) {
  Tensor p = Tensor::from_f32({p0}, {1}).set_requires_grad(true);
  AdamWOptions o;
  o.lr = lr;
  o.weight_decay = weight_decay;
  o.eps = eps;
  o.beta1 = 0.9f;
  o.beta2 = 0.999f;
  AdamW opt({{"p", p}}, o);
  p.set_grad(Tensor::from_f32({g}, {1}));
  opt.step();
  return p.to_f32_vector()[0];
}

// Settings where each part of the rule shows (the fixture's lr wd = 1e-5 and eps = 1e-8 hide both):
// eps added after the bias-corrected root (m_hat = v_hat = 1, denominator 1 + 1), and the decay
// applied to the parameter before the update (1 (1 - 0.05) - 0.1, not (1 - 0.1) (1 - 0.05)).
TEST(AdamW, eps_follows_the_corrected_root_and_decay_comes_before_the_update) {
  EXPECT_NEAR(one_adamw_step(0.0f, 1.0f, 1.0f, 0.0f, 1.0f), -0.5f, 1e-6);
  EXPECT_NEAR(one_adamw_step(1.0f, 1.0f, 0.1f, 0.5f, 1e-8f), 0.85f, 1e-6);
}

// The bf16 copy rounds stochastically without bias: a value a quarter of the way from 1 to the
// next bf16 (1 + 2^-7) rounds up for a quarter of the elements.
TEST(AdamW, bf16_copy_rounds_up_in_proportion_to_the_remainder) {
  const int64_t n = 20000;
  const float value = 1.0f + std::ldexp(1.0f, -9);
  Tensor p = Tensor::full({n}, value).set_requires_grad(true);
  AdamWOptions o;
  o.lr = 0.0f;
  o.weight_decay = 0.0f;
  o.bf16_copy = true;
  AdamW opt({{"p", p}}, o);
  p.set_grad(Tensor::zeros({n}));
  opt.step();
  int64_t up = 0;
  for (float c : opt.bf16_copy(0).to_f32_vector()) up += c > 1.0f;
  EXPECT_NEAR(static_cast<double>(up) / n, 0.25, 0.02);
}

// The fused GPU step against the CPU reference, bit for bit, with the gradients in an arena (so at
// float offsets that are not multiples of 4), tensors from 5 elements to more than one chunk, and
// the stochastically rounded bf16 copy.
TEST(AdamWGpu, matches_the_cpu_bit_for_bit_from_a_gradient_arena) {
  SKIP_WITHOUT_GPU();
  const std::vector<Shape> shapes = {{5}, {3, 7}, {70001}, {64, 66}};
  ParameterList cpu_params, gpu_params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = testkit::random_tensor(shapes[i], 10 + i);
    cpu_params.add("p" + std::to_string(i), p.clone());
    gpu_params.add("p" + std::to_string(i), p.to(Device::CUDA));
  }
  cpu_params.allocate_grad_arena();
  gpu_params.allocate_grad_arena();
  AdamWOptions o;
  o.weight_decay = 0.01f;
  o.bf16_copy = true;
  o.seed = 3;
  AdamW cpu(cpu_params.all(), o), gpu(gpu_params.all(), o);
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor g = testkit::random_tensor(shapes[i], 100 * step + i);
      cpu_params.all()[i].tensor.set_grad(g);
      gpu_params.all()[i].tensor.set_grad(g.to(Device::CUDA));
    }
    cpu.step();
    gpu.step();
    for (size_t i = 0; i < shapes.size(); ++i) {
      EXPECT_EQ(gpu_params.all()[i].tensor.to_f32_vector(), cpu_params.all()[i].tensor.to_f32_vector())
          << shape_str(shapes[i]) << " step " << step;
      EXPECT_EQ(gpu.bf16_copy(i).to_f32_vector(), cpu.bf16_copy(i).to_f32_vector())
          << shape_str(shapes[i]) << " bf16 copy, step " << step;
    }
  }
}

// ---- Muon ----

namespace {

// For every Muon case of the fixture: three steps; fp32 mode against the float64 replica, bf16
// mode against torch's result, each step's update compared relative to the reference update.
void check_muon_cases(Device device, NsPrecision precision) {
  SafetensorsFile file = load_safetensors(testkit::fixture_path("optim_steps.safetensors"));
  auto cases = nlohmann::json::parse(file.metadata.at("cases"));
  int checked = 0;
  for (auto& [name, hp] : cases.items()) {
    if (name.rfind("muon_", 0) != 0) continue;
    MuonOptions o;
    o.lr = hp["lr"];
    o.momentum = hp["momentum"];
    o.weight_decay = hp["weight_decay"];
    o.nesterov = hp["nesterov"];
    o.adjust_lr = parse_muon_adjust_lr(hp["adjust_lr_fn"]);
    o.newton_schulz.coefficients.assign(hp["ns_steps"].get<int>(),
                                        {hp["ns_coefficients"][0], hp["ns_coefficients"][1], hp["ns_coefficients"][2]});
    o.newton_schulz.eps = hp["eps"];
    o.newton_schulz.precision = precision;
    // torch.optim.Muon's table is the engine's default quintic.
    EXPECT_EQ(o.newton_schulz.coefficients, quintic_newton_schulz(hp["ns_steps"].get<int>()).coefficients) << name;
    Tensor p = file.at(name + ".param0").clone().to(device);
    p.set_requires_grad(true);
    Muon opt({{"w", p}}, o);
    const std::string suffix = precision == NsPrecision::FP32 ? "_f64" : "";
    std::vector<float> previous = file.at(name + ".param0").to_f32_vector();
    for (int s = 1; s <= 3; ++s) {
      p.set_grad(file.at(name + ".grad" + std::to_string(s)).clone().to(device));
      opt.step();
      std::vector<float> expected = file.at(name + ".param" + std::to_string(s) + suffix).to_f32_vector();
      std::vector<float> ours = p.to_f32_vector();
      std::vector<float> our_update(ours.size()), ref_update(ours.size());
      for (size_t i = 0; i < ours.size(); ++i) {
        our_update[i] = ours[i] - previous[i];
        ref_update[i] = expected[i] - previous[i];
      }
      if (precision == NsPrecision::FP32) {
        EXPECT_LT(testkit::relative_error(ours, expected), 1e-5) << name << " step " << s;
        EXPECT_LT(testkit::relative_error(our_update, ref_update), 1e-3) << name << " update, step " << s;
      } else {
        EXPECT_LT(testkit::relative_error(our_update, ref_update), 1e-2) << name << " update, step " << s;
      }
      previous = expected;  // each step is compared from the reference's own previous parameters
      p.copy_from(file.at(name + ".param" + std::to_string(s) + suffix).to(device));
    }
    ++checked;
  }
  EXPECT_EQ(checked, 8);
}

}  // namespace

TEST(MuonFixture, fp32_matches_float64_replica_on_cpu) {
  SKIP_WITHOUT_FIXTURE(testkit::fixture_path("optim_steps.safetensors"));
  check_muon_cases(Device::CPU, NsPrecision::FP32);
}

TEST(MuonFixture, bf16_matches_torch_on_cpu) {
  SKIP_WITHOUT_FIXTURE(testkit::fixture_path("optim_steps.safetensors"));
  check_muon_cases(Device::CPU, NsPrecision::BF16);
}

TEST(MuonFixture, fp32_and_bf16_match_on_gpu) {
  SKIP_WITHOUT_GPU();
  SKIP_WITHOUT_FIXTURE(testkit::fixture_path("optim_steps.safetensors"));
  check_muon_cases(Device::CUDA, NsPrecision::FP32);
  check_muon_cases(Device::CUDA, NsPrecision::BF16);
}

TEST(Muon, orthogonalizes_square_tall_and_wide_matrices) {
  for (Shape shape : {Shape{32, 32}, Shape{48, 16}, Shape{16, 48}}) {
    Tensor u = testkit::random_tensor(shape, 7);
    NewtonSchulzOptions o = quintic_newton_schulz(10);
    o.precision = NsPrecision::FP32;
    newton_schulz(u, o);
    // Singular values of the result lie near 1 (the quintic's fixed band is about [0.7, 1.2]):
    // check U^T U or U U^T has its diagonal in that band.
    const int64_t rows = shape[0], cols = shape[1], side = std::min(rows, cols);
    auto v = u.to_f32_vector();
    for (int64_t i = 0; i < side; ++i) {
      double diag = 0;
      for (int64_t k = 0; k < std::max(rows, cols); ++k) {
        float x = rows > cols ? v[k * cols + i] : v[i * cols + k];
        diag += static_cast<double>(x) * x;
      }
      EXPECT_GT(diag, 0.5) << shape_str(shape);
      EXPECT_LT(diag, 1.5) << shape_str(shape);
    }
  }
}

namespace {

// The published polynomials, applied to one singular value in double: x <- a x + b x^3 + c x^5 per
// (a, b, c), from x / (norm_factor * ||X||_F).
double composed(double x, double frobenius, double norm_factor, const std::vector<std::array<double, 3>>& table) {
  x /= norm_factor * frobenius;
  for (const auto& [a, b, c] : table) x = a * x + b * x * x * x + c * x * x * x * x * x;
  return x;
}

// newton_schulz on diag(s) (padded with zero rows or columns to `shape`): the result is diagonal, its
// entries the polynomials composed on each s_i, in fp32.
void expect_diagonal_follows(const NewtonSchulzOptions& options, const std::vector<std::array<double, 3>>& published,
                             double norm_factor, const Shape& shape) {
  const std::vector<float> singular = {1.0f, 0.5f, 0.1f, 0.01f};
  std::vector<float> values(static_cast<size_t>(shape[0] * shape[1]), 0.0f);
  double frobenius = 0;
  for (size_t i = 0; i < singular.size(); ++i) {
    values[i * shape[1] + i] = singular[i];
    frobenius += double(singular[i]) * singular[i];
  }
  frobenius = std::sqrt(frobenius);
  Tensor u = Tensor::from_f32(values, shape);
  NewtonSchulzOptions fp32 = options;
  fp32.precision = NsPrecision::FP32;
  newton_schulz(u, fp32);
  const std::vector<float> out = u.to_f32_vector();
  for (int64_t r = 0; r < shape[0]; ++r)
    for (int64_t c = 0; c < shape[1]; ++c) {
      const double expected = r == c ? composed(singular[r], frobenius, norm_factor, published) : 0.0;
      EXPECT_NEAR(out[r * shape[1] + c], expected, 2e-5 * std::max(1.0, std::abs(expected)))
          << shape_str(shape) << " at (" << r << ", " << c << ")";
    }
}

}  // namespace

// Both tables against their published values (the quintic of torch.optim.Muon and Keller Jordan's
// Muon; Polar Express, Amsel et al. 2025, table of 5 iterations at safety factor 2e-2, cushion 2,
// scaled by 1.02 ||X||_F), through the iteration on square, tall and wide matrices.
TEST(NewtonSchulz, a_diagonal_matrix_follows_the_published_polynomials) {
  const std::vector<std::array<double, 3>> quintic(5, {3.4445, -4.7750, 2.0315});
  const std::vector<std::array<double, 3>> polar_express = {
      {8.156554524902461, -22.48329292557795, 15.878769915207462},
      {4.042929935166739, -2.808917465908714, 0.5000178451051316},
      {3.8916678022926607, -2.772484153217685, 0.5060648178503393},
      {3.285753657755655, -2.3681294933425376, 0.46449024233003106},
      {2.3465413258596377, -1.7097828382687081, 0.42323551169305323}};
  for (const Shape& shape : {Shape{4, 4}, Shape{6, 4}, Shape{4, 7}}) {
    expect_diagonal_follows(quintic_newton_schulz(), quintic, 1.0, shape);
    expect_diagonal_follows(newton_schulz_by_name("polar-express"), polar_express, 1.02, shape);
  }
}

// torch divides by max(||X||_F, eps): a matrix smaller than eps = 1e-7 starts at X / eps, whose
// diagonal then follows the quintic (X / (||X|| + eps) would be 1% off).
TEST(NewtonSchulz, a_matrix_smaller_than_eps_is_divided_by_eps) {
  const std::vector<float> v = {6e-10f, 0.0f, 0.0f, 8e-10f};
  Tensor u = Tensor::from_f32(v, {2, 2});
  NewtonSchulzOptions ns = quintic_newton_schulz();
  ns.precision = NsPrecision::FP32;
  newton_schulz(u, ns);
  const std::vector<float> out = u.to_f32_vector();
  for (int i : {0, 3}) {
    double s = v[i] / 1e-7;
    for (int k = 0; k < 5; ++k) s = 3.4445 * s - 4.7750 * s * s * s + 2.0315 * s * s * s * s * s;
    EXPECT_NEAR(out[i], s, 1e-4 * s) << i;
  }
}

// Without Nesterov the update is the momentum buffer itself, buf <- m buf + (1 - m) g (torch's
// lerp): after g1 = diag(1, 0) and g2 = diag(0, 1), buf = (1 - m) diag(m, 1), so the second step
// moves the two diagonal entries in the ratio of the quintic's values at m/N and 1/N
// (N = sqrt(m^2 + 1)). With Nesterov the update is g2 + m (buf - g2) = (1 - m) diag(m^2, 1 + m).
TEST(Muon, the_update_is_the_momentum_buffer_without_nesterov_and_looks_ahead_with_it) {
  const double m = 0.5;
  const std::vector<std::array<double, 3>> quintic(5, {3.4445, -4.7750, 2.0315});
  for (const bool nesterov : {false, true}) {
    MuonOptions o;
    o.momentum = static_cast<float>(m);
    o.nesterov = nesterov;
    o.newton_schulz.precision = NsPrecision::FP32;
    Tensor p = Tensor::zeros({2, 2}).set_requires_grad(true);
    Muon opt({{"w", p}}, o);
    p.set_grad(Tensor::from_f32({1, 0, 0, 0}, {2, 2}));
    opt.step();
    const std::vector<float> after_first = p.to_f32_vector();
    p.set_grad(Tensor::from_f32({0, 0, 0, 1}, {2, 2}));
    opt.step();
    const std::vector<float> after_second = p.to_f32_vector();
    const double moved00 = after_second[0] - after_first[0], moved11 = after_second[3] - after_first[3];
    const double first = nesterov ? m * m : m, second = nesterov ? 1 + m : 1;
    const double norm = std::sqrt(first * first + second * second);
    const double expected_ratio = composed(first, norm, 1.0, quintic) / composed(second, norm, 1.0, quintic);
    EXPECT_NEAR(moved00 / moved11, expected_ratio, 1e-4) << (nesterov ? "nesterov" : "plain");
    EXPECT_LT(moved11, 0) << "a step against the gradient";
  }
}

TEST(Muon, rejects_non_matrices_and_names_the_parameter) {
  Tensor b = Tensor::zeros({4}).set_requires_grad(true);
  try {
    Muon({{"blocks.0.fc1.bias", b}}, {});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.0.fc1.bias"), std::string::npos);
  }
  MuonOptions o;
  o.adjust_lr = MuonAdjustLr::MatchRmsAdamW;
  Tensor w = Tensor::zeros({64, 16}).set_requires_grad(true);
  Muon m({{"w", w}}, o);
  EXPECT_FLOAT_EQ(m.adjusted_lr(64, 16), 0.02f * 0.2f * 8.0f);
  EXPECT_THROW(parse_muon_adjust_lr("other"), Error);
  EXPECT_THROW(newton_schulz_by_name("cubic"), Error);
}

// ---- parameter groups and schedules ----
#include <functional>

#include "muonrec/models/sequential_model.h"
#include "muonrec/models/tiger.h"
#include "muonrec/optim/param_groups.h"

namespace {

ModelConfig small_sasrec(int64_t blocks) {
  ModelConfig c;
  c.n_items = 20;
  c.max_len = 5;
  c.d = 8;
  c.blocks = blocks;
  return c;
}

std::vector<NamedParameter> sasrec_params() {
  static auto model = make_model(small_sasrec(1), Device::CPU, 1);
  return model->parameters().all();
}

// Muon for the block matrices, AdamW for the rest, at these rates.
OptimizerConfig muon_groups(float adamw_lr, float muon_lr) {
  OptimizerConfig config;
  config.optimizer = "muon";
  config.adamw.lr = adamw_lr;
  config.muon.lr = muon_lr;
  return config;
}

std::vector<std::string> muon_names(const std::string& policy) {
  auto params = sasrec_params();
  auto to_muon = muon_assignment(params, policy);
  std::vector<std::string> names;
  for (size_t i = 0; i < params.size(); ++i)
    if (to_muon[i]) names.push_back(params[i].name);
  return names;
}

}  // namespace

TEST(ParamGroups, policies_split_sasrec_as_documented) {
  const std::vector<std::string> block_matrices = {"blocks.0.qkv.weight", "blocks.0.proj.weight", "blocks.0.fc1.weight",
                                                   "blocks.0.fc2.weight"};
  EXPECT_EQ(muon_names("muonrec"), block_matrices);  // embeddings (tied head) and 1-D tensors stay on AdamW
  EXPECT_EQ(muon_names("hidden"), block_matrices);
  EXPECT_EQ(muon_names("regex:blocks\\.0\\.fc.\\.weight"),
            (std::vector<std::string>{"blocks.0.fc1.weight", "blocks.0.fc2.weight"}));
  EXPECT_THROW(muon_names("regex:.*bias"), Error);  // 1-D tensors cannot go to Muon
  EXPECT_THROW(muon_names("regex:(("), Error);
  // The pattern matches whole names: a fragment selects nothing, and that is refused.
  testkit::expect_error([] { muon_names("regex:fc1"); }, {"regex:fc1 selects no parameter", "blocks.0.fc1.weight"});
  EXPECT_THROW(muon_names("everything"), Error);
  // Muon orthogonalises matrices: under "muonrec" a tensor of more dims stays on AdamW.
  const std::vector<NamedParameter> with_a_cube = {{"blocks.0.cube", Tensor::zeros({2, 3, 4})},
                                                   {"blocks.0.matrix", Tensor::zeros({3, 4})}};
  EXPECT_EQ(muon_assignment(with_a_cube, "muonrec"), (std::vector<bool>{false, true}));

  // TIGER's encoder-decoder: "hidden" takes the encoder's block matrices as well as the decoder's.
  TigerConfig tiger;
  tiger.vocab_sizes = {4, 4};
  tiger.d = 8;
  tiger.blocks = 1;
  tiger.encoder_blocks = 1;
  TigerModel encoder_decoder(tiger, Device::CPU, 1);
  const std::vector<NamedParameter> params = encoder_decoder.parameters().all();
  const std::vector<bool> to_muon = muon_assignment(params, "hidden");
  int64_t encoder_matrices = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& name = params[i].name;
    const bool block_matrix = params[i].tensor.rank() == 2 &&
                              (name.rfind("blocks.", 0) == 0 || name.rfind("encoder.blocks.", 0) == 0);
    EXPECT_EQ(to_muon[i], block_matrix) << name;
    encoder_matrices += to_muon[i] && name.rfind("encoder.blocks.", 0) == 0;
  }
  EXPECT_GE(encoder_matrices, 4);  // qkv, proj, fc1, fc2
}

TEST(ParamGroups, optimizer_set_steps_each_group_with_its_own_rate) {
  auto params = sasrec_params();
  OptimizerSet set(params, muon_groups(1e-3f, 0.05f));
  ASSERT_EQ(set.optimizers().size(), 2u);
  EXPECT_STREQ(set.optimizers()[0]->name(), "adamw");
  EXPECT_STREQ(set.optimizers()[1]->name(), "muon");
  EXPECT_EQ(set.optimizers()[1]->params().size(), 4u);
  auto lines = set.describe();
  EXPECT_NE(lines[1].find("blocks.0.qkv.weight[24, 8]"), std::string::npos) << lines[1];
  for (const auto& p : params) p.tensor.set_grad(testkit::random_tensor(p.tensor.shape(), 5));
  set.step();
  EXPECT_FLOAT_EQ(set.optimizers()[0]->lr(), 1e-3f);
  EXPECT_FLOAT_EQ(set.optimizers()[1]->lr(), 0.05f);
  EXPECT_EQ(set.steps(), 1);
  for (const auto& p : params) p.tensor.zero_grad();
}

// A set's state loads back whole, and state it does not own (another parameter's moments, another
// optimizer's buffers) is refused rather than ignored.
TEST(ParamGroups, optimizer_set_state_it_does_not_own_is_refused) {
  auto params = sasrec_params();
  OptimizerSet set(params, muon_groups(1e-3f, 0.05f));
  for (const auto& p : params) p.tensor.set_grad(testkit::random_tensor(p.tensor.shape(), 5));
  set.step();
  const std::string path = testkit::scratch_path("optimizer_set_state.safetensors");
  std::map<std::string, Tensor> state = set.state();
  save_safetensors(path, state);
  OptimizerSet restored(params, muon_groups(1e-3f, 0.05f));
  restored.load_state(load_safetensors(path));
  EXPECT_EQ(restored.steps(), 1);
  for (const char* stray : {"adamw.exp_avg.ghost", "muon.momentum_buffer.ghost", "optimizer_set.extra"}) {
    std::map<std::string, Tensor> with_stray = state;
    with_stray[stray] = Tensor::zeros({1});
    save_safetensors(path, with_stray);
    testkit::expect_error([&] { restored.load_state(load_safetensors(path)); },
                          {path + ": optimizer state '" + stray + "' belongs to no parameter"});
  }
  for (const auto& p : params) p.tensor.zero_grad();
}

// Settings under which a group would not train as asked are refused when the groups are made: a
// cosine floor above a group's rate (it would never anneal), a warm-up as long as the run, and a Muon
// policy that selects nothing (AdamW alone would run under Muon's name).
TEST(ParamGroups, optimizer_set_refuses_schedules_and_policies_that_cannot_do_what_they_say) {
  auto params = sasrec_params();
  OptimizerConfig config = muon_groups(1e-3f, 0.02f);
  config.schedule.kind = LrSchedule::Kind::Cosine;
  config.schedule.total_steps = 8;
  config.schedule.min_lr = 5e-3f;
  testkit::expect_error([&] { OptimizerSet(params, config); },
                        {"floor (--min-lr 0.005) is above the AdamW learning rate 0.001"});
  config.adamw.lr = 0.01f;
  EXPECT_NO_THROW(OptimizerSet(params, config));
  config.schedule.warmup_steps = 8;
  testkit::expect_error([&] { OptimizerSet(params, config); },
                        {"a warm-up of 8 steps is not shorter than the run's 8 steps"});
  config.schedule.warmup_steps = 7;
  EXPECT_NO_THROW(OptimizerSet(params, config));
  config.schedule.warmup_steps = 0;
  config.schedule.total_steps = 0;  // a cosine with no length would sit at its floor after one step
  testkit::expect_error([&] { OptimizerSet(params, config); },
                        {"the cosine schedule needs the run's length (schedule.total_steps), got 0"});

  auto model = make_model(small_sasrec(/*blocks=*/0), Device::CPU, 1);
  OptimizerConfig muon = muon_groups(1e-3f, 0.02f);
  for (const char* policy : {"muonrec", "hidden"}) {
    muon.param_policy = policy;
    testkit::expect_error([&] { OptimizerSet(model->parameters().all(), muon); },
                          {fmt::format("--param-policy {} gives Muon no parameter", policy), "--optim adamw"});
  }

  // Muon's settings under AdamW alone would go unheard: refused, naming the first one set.
  OptimizerConfig adamw;
  EXPECT_NO_THROW(OptimizerSet(params, adamw));
  adamw.param_policy = "bogus";
  testkit::expect_error([&] { OptimizerSet(params, adamw); },
                        {"optimizer 'adamw' trains every parameter with AdamW, so its param_policy would go unheard"});
  adamw = OptimizerConfig();
  adamw.muon.newton_schulz.precision = NsPrecision::FP32;
  testkit::expect_error([&] { OptimizerSet(params, adamw); }, {"its muon.newton_schulz would go unheard"});
  const std::vector<std::pair<std::string, std::function<void(MuonOptions&)>>> muon_settings = {
      {"lr", [](MuonOptions& m) { m.lr *= 2; }},
      {"momentum", [](MuonOptions& m) { m.momentum /= 2; }},
      {"weight_decay", [](MuonOptions& m) { m.weight_decay += 0.5f; }},
      {"nesterov", [](MuonOptions& m) { m.nesterov = !m.nesterov; }},
      {"adjust_lr", [](MuonOptions& m) {
         m.adjust_lr = m.adjust_lr == MuonAdjustLr::Original ? MuonAdjustLr::MatchRmsAdamW : MuonAdjustLr::Original;
       }}};
  for (const auto& [field, change] : muon_settings) {
    adamw = OptimizerConfig();
    change(adamw.muon);
    testkit::expect_error([&] { OptimizerSet(params, adamw); }, {"its muon." + field + " would go unheard"});
  }
}

// The rate of the k-th step (from 0) is the schedule's at k: warm-up 1/4, 2/4, 3/4, 1, then cosine.
TEST(ParamGroups, optimizer_set_steps_at_the_schedules_rate_from_step_0) {
  Tensor w = Tensor::zeros({4}).set_requires_grad(true);
  OptimizerConfig config;
  config.optimizer = "adamw";
  config.adamw.lr = 1.0f;
  config.schedule.kind = LrSchedule::Kind::Cosine;
  config.schedule.warmup_steps = 4;
  config.schedule.total_steps = 10;
  config.schedule.min_lr = 0.0f;
  OptimizerSet set({{"w", w}}, config);
  const double cosine_at_1_of_6 = 0.5 * (1.0 + std::cos(M_PI / 6.0));
  for (double lr : {0.25, 0.5, 0.75, 1.0, 1.0, cosine_at_1_of_6}) {
    w.set_grad(Tensor::full({4}, 1.0f));
    set.step();
    EXPECT_NEAR(set.optimizers()[0]->lr(), lr, 1e-6);
  }
}

TEST(Schedule, warmup_then_cosine_to_the_floor) {
  LrSchedule s;
  s.kind = LrSchedule::Kind::Cosine;
  s.warmup_steps = 4;
  s.total_steps = 104;
  s.min_lr = 1e-6f;
  EXPECT_FLOAT_EQ(s.lr_at(0, 1.0f), 0.25f);
  EXPECT_FLOAT_EQ(s.lr_at(3, 1.0f), 1.0f);
  EXPECT_FLOAT_EQ(s.lr_at(4, 1.0f), 1.0f);
  EXPECT_NEAR(s.lr_at(54, 1.0f), 0.5f + 0.5e-6f, 1e-6);
  EXPECT_FLOAT_EQ(s.lr_at(104, 1.0f), 1e-6f);
  EXPECT_FLOAT_EQ(s.lr_at(500, 1.0f), 1e-6f);
  LrSchedule c;
  EXPECT_FLOAT_EQ(c.lr_at(1000, 0.3f), 0.3f);
  EXPECT_THROW(parse_schedule_kind("step"), Error);
}

TEST(GradClip, scales_the_arena_to_the_global_norm) {
  ParameterList params;
  Tensor a = params.add("a", Tensor::zeros({2, 3})), b = params.add("b", Tensor::zeros({4}));
  params.allocate_grad_arena();
  a.set_grad(Tensor::from_f32({3, 0, 0, 0, 0, 0}, {2, 3}));
  b.set_grad(Tensor::from_f32({0, 4, 0, 0}, {4}));
  Tensor norm = params.clip_grad_norm(1.0f);
  EXPECT_NEAR(norm.item(), 5.0f, 1e-6);
  EXPECT_NEAR(a.grad().to_f32_vector()[0], 3.0f / (5.0f + 1e-6f), 1e-6);
  EXPECT_NEAR(b.grad().to_f32_vector()[1], 4.0f / (5.0f + 1e-6f), 1e-6);
  params.clip_grad_norm(10.0f);  // under the limit: unchanged
  EXPECT_NEAR(b.grad().to_f32_vector()[1], 4.0f / (5.0f + 1e-6f), 1e-6);
  params.zero_grad();
  EXPECT_EQ(a.grad().to_f32_vector(), std::vector<float>(6, 0.0f));
  EXPECT_THROW(params.clip_grad_norm(0.0f), Error);
}

// torch's clip_grad_norm_: coefficient max_norm / (norm + 1e-6), which shows for small norms.
TEST(GradClip, coefficient_adds_1e_6_to_the_norm) {
  ParameterList params;
  Tensor a = params.add("a", Tensor::zeros({2}));
  params.allocate_grad_arena();
  a.set_grad(Tensor::from_f32({3e-6f, 4e-6f}, {2}));
  params.clip_grad_norm(1e-6f);
  EXPECT_NEAR(a.grad().to_f32_vector()[0], 3e-6 / 6.0, 1e-12);  // 1e-6 / (5e-6 + 1e-6)
}

// A GPU Muon path against the step-by-step CPU reference in bf16 mode: three steps with fresh
// gradients, each compared from the same starting parameters.
void expect_gpu_muon_matches_cpu(const std::vector<Shape>& shapes, Muon::Path expected_path) {
  std::vector<NamedParameter> cpu_params, gpu_params;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor p = testkit::random_tensor(shapes[i], 100 + i, 0.05f).set_requires_grad(true);
    cpu_params.push_back({"m" + std::to_string(i), p});
    gpu_params.push_back({"m" + std::to_string(i), p.clone().to(Device::CUDA).set_requires_grad(true)});
  }
  MuonOptions o;
  o.weight_decay = 0.1f;
  Muon cpu_muon(cpu_params, o), gpu_muon(gpu_params, o);
  for (size_t i = 0; i < shapes.size(); ++i) EXPECT_EQ(gpu_muon.path(i), expected_path) << shape_str(shapes[i]);
  for (int step = 1; step <= 3; ++step) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor g = testkit::random_tensor(shapes[i], 1000 * step + i);
      cpu_params[i].tensor.set_grad(g);
      gpu_params[i].tensor.set_grad(g.to(Device::CUDA));
    }
    std::vector<std::vector<float>> before;
    for (const auto& p : cpu_params) before.push_back(p.tensor.to_f32_vector());
    cpu_muon.step();
    gpu_muon.step();
    for (size_t i = 0; i < shapes.size(); ++i) {
      std::vector<float> cpu_after = cpu_params[i].tensor.to_f32_vector();
      std::vector<float> gpu_after = gpu_params[i].tensor.to_f32_vector();
      std::vector<float> cpu_update(cpu_after.size()), gpu_update(cpu_after.size());
      for (size_t k = 0; k < cpu_after.size(); ++k) {
        cpu_update[k] = cpu_after[k] - before[i][k];
        gpu_update[k] = gpu_after[k] - before[i][k];
      }
      EXPECT_LT(testkit::relative_error(gpu_update, cpu_update), 1e-2) << shape_str(shapes[i]) << " step " << step;
      gpu_params[i].tensor.copy_from(cpu_params[i].tensor);
    }
  }
}

// SASRec's shapes and a d=128 model: one fused launch for all of them.
TEST(MuonGpu, fused_small_matrices_match_the_cpu_reference) {
  SKIP_WITHOUT_GPU();
  expect_gpu_muon_matches_cpu({{192, 64}, {64, 64}, {64, 256}, {256, 64}, {50, 150}, {384, 128}}, Muon::Path::Fused);
}

// Too large for shared memory: stacked by shape, strided-batched bf16 GEMMs (tall and wide groups).
TEST(MuonGpu, batched_large_matrices_match_the_cpu_reference) {
  SKIP_WITHOUT_GPU();
  expect_gpu_muon_matches_cpu({{640, 256}, {256, 640}, {640, 256}, {256, 640}, {640, 256}}, Muon::Path::Batched);
}

// Shapes that fill no tile: a single row or column, sides and lengths that are not multiples of 16.
TEST(MuonGpu, fused_odd_shapes_match_the_cpu_reference) {
  SKIP_WITHOUT_GPU();
  expect_gpu_muon_matches_cpu({{1, 64}, {64, 1}, {3, 200}, {17, 33}, {130, 70}, {5, 5}}, Muon::Path::Fused);
}

// Leading dimensions that are not multiples of 8, two groups of different shapes.
TEST(MuonGpu, batched_odd_shapes_match_the_cpu_reference) {
  SKIP_WITHOUT_GPU();
  expect_gpu_muon_matches_cpu({{250, 333}, {333, 250}, {250, 333}}, Muon::Path::Batched);
}

// fp32 Newton-Schulz is for exactness studies: a process running its other products on TF32 or
// bf16 tensor cores (--matmul-precision) must not round its products. The same matrix gives the same
// bits under every setting, and the setting is restored afterwards.
TEST(MuonGpu, fp32_newton_schulz_ignores_the_process_matmul_precision) {
  SKIP_WITHOUT_GPU();
  const Tensor start = testkit::random_tensor({96, 40}, 9).to(Device::CUDA);
  NewtonSchulzOptions o = quintic_newton_schulz();
  o.precision = NsPrecision::FP32;
  auto orthogonalized = [&](MatmulPrecision precision) {
    MatmulPrecisionGuard process(precision);
    Tensor u = start.clone();
    newton_schulz(u, o);
    EXPECT_EQ(matmul_precision(), precision);
    return u.to_f32_vector();
  };
  const std::vector<float> exact = orthogonalized(MatmulPrecision::FP32);
  EXPECT_EQ(orthogonalized(MatmulPrecision::TF32), exact);
  EXPECT_EQ(orthogonalized(MatmulPrecision::BF16), exact);
}
