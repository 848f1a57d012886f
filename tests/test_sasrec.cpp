// SASRec against the PyTorch fixture (float64 reference stored as float32): hidden state, loss,
// last-position scores and every parameter gradient, on CPU and (where present) on the GPU.
#include <limits>

#include "fixture_util.h"
#include "muonrec/models/sasrec.h"
#include "tiny_model_config.h"

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
  ModelConfig c = testkit::tiny_model_config("sasrec", 10, 4, 1);
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

// A head width set apart from d (heads x head_dim != d): each head's q, k, v rows and proj columns
// widened with zeros, and q scaled by sqrt(6 / 4) so the logits keep their 1/sqrt(head_dim) scale,
// give the model with d / heads exactly: the layout puts head h at rows h x head_dim of each of
// q, k, v and the attention scales by the head width it is given, not by d / heads.
TEST(SASRec, head_dim_apart_from_d_widens_each_head) {
  ModelConfig c = testkit::tiny_model_config("sasrec", 10, 5, 2);
  auto narrow = make_model(c, Device::CPU, 3);
  c.head_dim = 6;
  auto wide = make_model(c, Device::CPU, 4);
  EXPECT_EQ(wide->parameters().find("blocks.0.qkv.weight").shape(), (Shape{36, 8}));
  EXPECT_EQ(wide->parameters().find("blocks.0.proj.weight").shape(), (Shape{8, 12}));
  EXPECT_EQ(ModelConfig::from_json(c.to_json()).head_dim, 6);

  const int64_t narrow_dh = 4, wide_dh = 6, d = 8;
  const float q_scale = std::sqrt(static_cast<float>(wide_dh) / static_cast<float>(narrow_dh));
  for (const auto& p : narrow->parameters().all()) {
    const std::vector<float> from = p.tensor.to_f32_vector();
    Tensor to = wide->parameters().find(p.name);  // a handle: writes land in the parameter
    float* out = to.data<float>();
    std::fill(out, out + to.numel(), 0.0f);
    const bool is_qkv = p.name.find(".qkv.") != std::string::npos;
    const bool is_proj = p.name.find(".proj.weight") != std::string::npos;
    if (is_qkv) {
      const int64_t cols = p.tensor.rank() == 2 ? d : 1;
      for (int64_t part = 0; part < 3; ++part)
        for (int64_t h = 0; h < c.heads; ++h)
          for (int64_t j = 0; j < narrow_dh; ++j)
            for (int64_t k = 0; k < cols; ++k)
              out[((part * c.heads + h) * wide_dh + j) * cols + k] =
                  from[((part * c.heads + h) * narrow_dh + j) * cols + k] * (part == 0 ? q_scale : 1.0f);
    } else if (is_proj) {
      for (int64_t r = 0; r < d; ++r)
        for (int64_t h = 0; h < c.heads; ++h)
          for (int64_t j = 0; j < narrow_dh; ++j)
            out[r * c.heads * wide_dh + h * wide_dh + j] = from[r * c.heads * narrow_dh + h * narrow_dh + j];
    } else {
      ASSERT_EQ(to.shape(), p.tensor.shape()) << p.name;
      std::copy(from.begin(), from.end(), out);
    }
  }
  PhiloxGenerator gen(0);
  NoGradGuard no_grad;
  SequenceBatch batch = make_sequence_batch({0, 3, 7, 2, 9, /**/ 4, 1, 8, 6, 5}, std::vector<int64_t>(10, 0), {}, 2, 5,
                                            Device::CPU);
  const std::vector<float> expected = narrow->hidden(batch, false, gen).to_f32_vector();
  EXPECT_LT(testkit::relative_error(wide->hidden(batch, false, gen).to_f32_vector(), expected), 1e-5);

  c.head_dim = -1;
  EXPECT_THROW(make_model(c, Device::CPU, 3), Error);
  c.head_dim = 5;  // hstu's heads split d
  c.kind = "hstu";
  EXPECT_THROW(make_model(c, Device::CPU, 3), Error);
}

// Settings no step could use are refused when the model is made, whichever model it is, rather than
// at the first training step (dropout) or the first evaluation (the sampled loss's temperature).
TEST(ModelConfig, settings_no_step_could_use_are_refused_by_make_model) {
  for (const char* kind : {"sasrec", "bert4rec", "hstu"}) {
    SCOPED_TRACE(kind);
    const ModelConfig base = testkit::tiny_model_config(kind, 10, 4, 1);
    for (float dropout : {-0.1f, 1.0f, std::nanf("")}) {
      ModelConfig c = base;
      c.dropout = dropout;
      testkit::expect_error([&] { make_model(c, Device::CPU, 1); }, {kind, "dropout must be in [0, 1)"});
    }
    ModelConfig sampled = base;
    sampled.loss.kind = LossConfig::Kind::SampledSoftmax;
    sampled.loss.negatives = 0;
    testkit::expect_error([&] { make_model(sampled, Device::CPU, 1); }, {"at least one negative, got 0"});
    sampled.loss.negatives = 4;
    sampled.loss.temperature = 0.0f;
    testkit::expect_error([&] { make_model(sampled, Device::CPU, 1); },
                          {"temperature must be a finite number > 0, got 0"});
    sampled.loss.temperature = std::numeric_limits<float>::infinity();  // every logit 0: nothing to learn
    testkit::expect_error([&] { make_model(sampled, Device::CPU, 1); }, {"must be a finite number > 0, got inf"});
    ModelConfig full = base;  // a full softmax has no temperature to refuse
    full.loss.temperature = 0.0f;
    full.dropout = 0.0f;
    EXPECT_NO_THROW(make_model(full, Device::CPU, 1));
  }
}

// A window shorter than max_len takes position rows 0..T-1 (MODELS.md: pos.weight[0..T-1]). With no
// block, each valid slot's hidden state is x = item * sqrt(d) + pos[t] (computed here in double),
// through SASRec's final LayerNorm or HSTU's L2 normalisation.
TEST(SequentialModels, a_short_window_takes_the_first_position_rows) {
  for (const std::string kind : {"sasrec", "hstu"}) {
    ModelConfig c = testkit::tiny_model_config(kind, 10, 8, 0);
    auto model = make_model(c, Device::CPU, 3);
    const int64_t T = 5, d = c.d;
    ASSERT_LT(T, c.max_len);
    const std::vector<int64_t> ids = {0, 1, 2, 3, 4};
    SequenceBatch batch = make_sequence_batch(ids, std::vector<int64_t>(T, 0), {}, 1, T, Device::CPU);
    PhiloxGenerator gen(0);
    const std::vector<float> h = model->hidden(batch, false, gen).to_f32_vector();
    const std::vector<float> item = model->parameters().find("item.weight").to_f32_vector();
    const std::vector<float> pos = model->parameters().find("pos.weight").to_f32_vector();
    for (int64_t t = 1; t < T; ++t) {
      std::vector<double> x(static_cast<size_t>(d));
      double mean = 0.0, variance = 0.0, norm2 = 0.0;
      for (int64_t k = 0; k < d; ++k) {
        x[k] = item[ids[t] * d + k] * std::sqrt(static_cast<double>(d)) + pos[t * d + k];
        mean += x[k] / d;
        norm2 += x[k] * x[k];
      }
      for (int64_t k = 0; k < d; ++k) variance += (x[k] - mean) * (x[k] - mean) / d;
      for (int64_t k = 0; k < d; ++k) {
        const double expected = kind == "sasrec" ? (x[k] - mean) / std::sqrt(variance + 1e-5) : x[k] / std::sqrt(norm2);
        EXPECT_NEAR(h[t * d + k], expected, 1e-4) << kind << " t=" << t;
      }
    }
  }
}

// A training forward draws one dropout stream for the embedded input and three per block, where
// MODELS.md drops out: after proj, inside the feed-forward (after GELU) and after fc2.
TEST(SASRec, training_forward_drops_out_once_for_the_input_and_three_times_per_block) {
  ModelConfig c = testkit::tiny_model_config("sasrec", 10, 6, 2);
  c.dropout = 0.3f;
  SASRec model(c, Device::CPU, 3);
  SequenceBatch batch = make_sequence_batch({0, 1, 2, 3, 4, 5}, std::vector<int64_t>(6, 0), {}, 1, 6, Device::CPU);
  PhiloxGenerator gen(7);
  model.hidden(batch, true, gen);
  EXPECT_EQ(gen.offset(), 1u + 3u * 2u);
}
