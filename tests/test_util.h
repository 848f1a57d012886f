// Shared helpers for the test suites: random tensors, error norms, finite-difference gradient
// checks, the shared/ folder with the PyTorch fixtures, and the GPU skip.
#pragma once

#include <cstdint>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include "muonrec/engine/autograd.h"
#include "muonrec/engine/error.h"
#include "muonrec/engine/device.h"
#include "muonrec/engine/ops.h"
#include "muonrec/engine/rng.h"
#include "muonrec/engine/tensor.h"

namespace muonrec::testkit {

// N(0, scale^2) values, fresh for every seed.
inline Tensor random_tensor(const Shape& shape, uint64_t seed, float scale = 1.0f, Device device = Device::CPU) {
  PhiloxGenerator gen(seed);
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  for (float& v : values) v = gen.normal() * scale;
  return Tensor::from_f32(values, shape, device);
}

// random_tensor that collects a gradient: a leaf parameter for gradient checks.
inline Tensor random_param(const Shape& shape, uint64_t seed, float scale = 1.0f) {
  Tensor t = random_tensor(shape, seed, scale);
  t.set_requires_grad(true);
  return t;
}

// ||a - b|| / ||b||; infinity when a holds a NaN/inf or the sizes differ. b may be a float or a
// double reference.
template <class Reference>
double relative_error(const std::vector<float>& a, const std::vector<Reference>& b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0.0, ref = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    diff += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    ref += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
}

inline double relative_error(const Tensor& a, const Tensor& b) {
  return relative_error(a.to_f32_vector(), b.to_f32_vector());
}

// Checks the analytic gradients of f (inputs -> any tensor) against central differences of the
// scalar L = sum(f(inputs) * R) for a fixed random R. Inputs that require grad are checked.
inline void expect_gradients_match(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                   std::vector<Tensor> inputs, double tolerance = 1e-2, float step = 1e-2f) {
  clear_tape();
  Tensor probe_out;
  {
    NoGradGuard no_grad;
    probe_out = f(inputs);
  }
  Tensor weights = random_tensor(probe_out.shape(), 9001);
  auto scalar_loss = [&]() {
    NoGradGuard no_grad;
    return static_cast<double>(ops::sum(ops::mul(f(inputs), weights)).item());
  };
  for (Tensor& t : inputs) t.zero_grad();
  Tensor loss = ops::sum(ops::mul(f(inputs), weights));
  backward(loss);
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& t = inputs[k];
    if (!t.requires_grad()) continue;
    ASSERT_TRUE(t.grad().defined()) << "input " << k << " got no gradient";
    std::vector<float> analytic = t.grad().to_f32_vector();
    std::vector<float> numeric(analytic.size());
    float* p = t.data<float>();
    for (size_t i = 0; i < numeric.size(); ++i) {
      float saved = p[i];
      p[i] = saved + step;
      double up = scalar_loss();
      p[i] = saved - step;
      double down = scalar_loss();
      p[i] = saved;
      numeric[i] = static_cast<float>((up - down) / (2.0 * step));
    }
    EXPECT_LT(relative_error(analytic, numeric), tolerance) << "gradient of input " << k;
  }
}

// A fresh directory per use, removed afterwards: tests write their own small input files here.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    dir_ = std::filesystem::temp_directory_path() /
           ("muonrec_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string write(const std::string& name, const std::string& content) const {
    const std::filesystem::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

// A path in a folder of this test process's own, which goes when the process exits: the file is
// removed even when its test fails before cleaning up, and concurrent runs do not share names.
inline std::string scratch_path(const std::string& name) {
  static const TempDir dir;
  return dir.path(name);
}

// Runs f and expects a muonrec::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected muonrec::Error";
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const auto& part : parts)
      EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

// Runs f with the process's file-size limit at `bytes` (SIGXFSZ ignored, so a write past it fails
// with an error instead of killing the test, as on a full disk) and returns the message of the
// muonrec::Error it throws ("" when none). The limit and the signal are restored after.
inline std::string error_under_file_size_limit(rlim_t bytes, const std::function<void()>& f) {
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  EXPECT_EQ(sigaction(SIGXFSZ, &ignore, &previous), 0);
  rlimit saved{};
  EXPECT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = bytes;
  EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    f();
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  EXPECT_EQ(sigaction(SIGXFSZ, &previous, nullptr), 0);
  return message;
}

// The shared/ folder beside the repository (fixtures, datasets): $MUONREC_SHARED, else ../shared.
inline std::string shared_dir() {
  if (const char* env = std::getenv("MUONREC_SHARED")) return env;
  return std::string(MUONREC_SOURCE_DIR) + "/../shared";
}

inline std::string fixture_path(const std::string& name) { return shared_dir() + "/fixtures/" + name; }

}  // namespace muonrec::testkit

#define SKIP_WITHOUT_GPU()                                                                      \
  do {                                                                                          \
    if (!::muonrec::cuda_available())                                                           \
      GTEST_SKIP() << "GPU test skipped: " << ::muonrec::cuda_unavailable_reason();             \
  } while (0)

// Tests of ../shared's fixtures and datasets skip where the folder is absent, as it is for outside
// users. CI, which has it, sets MUONREC_REQUIRE_SHARED=1: a folder not found there fails the test
// instead of letting every conformance check pass by skipping. `what` may be a stream expression.
#define SKIP_WITHOUT_SHARED(found, what)                                                        \
  do {                                                                                          \
    if (!(found)) {                                                                             \
      const char* require = std::getenv("MUONREC_REQUIRE_SHARED");                              \
      if (require != nullptr && std::string(require) == "1")                                    \
        FAIL() << what << " not found under " << ::muonrec::testkit::shared_dir()               \
               << ", and MUONREC_REQUIRE_SHARED=1 requires it";                                 \
      GTEST_SKIP() << what << " not found under " << ::muonrec::testkit::shared_dir()           \
                   << " (set MUONREC_SHARED to the shared/ folder)";                            \
    }                                                                                           \
  } while (0)

#define SKIP_WITHOUT_FIXTURE(path) SKIP_WITHOUT_SHARED(std::filesystem::exists(path), "fixture " << (path))
