#include "muonrec/models/tiger_step_benchmark.h"

#include "muonrec/engine/error.h"
#include "muonrec/engine/nvtx.h"
#include "muonrec/engine/rng.h"
#include "muonrec/models/semantic_id/rq_kmeans.h"
#include "muonrec/models/tiger_batches.h"
#include "muonrec/models/training_step.h"

namespace muonrec {

TigerBenchmarkData make_tiger_benchmark_data(int64_t n_items, int64_t levels, int64_t codebook, int64_t history_items,
                                             int64_t users, uint64_t seed) {
  MUONREC_CHECK(n_items > 0 && levels > 0 && codebook > 0 && history_items > 0 && users > 0,
                "tiger benchmark data needs positive items, levels, codebook, history and users (got {}, {}, {}, {}, "
                "{})",
                n_items, levels, codebook, history_items, users);
  PhiloxGenerator gen(seed);
  auto draw = [&gen](int64_t n) { return static_cast<int64_t>(gen.uniform_u64() % static_cast<uint64_t>(n)); };
  TigerBenchmarkData out;
  data::SequenceDataset& ds = out.dataset;
  ds.source = "tiger benchmark";
  ds.format = data::Format::UserSequences;
  ds.n_items = n_items;
  ds.item_source_ids.resize(static_cast<size_t>(n_items + 1));
  for (int64_t i = 0; i <= n_items; ++i) ds.item_source_ids[static_cast<size_t>(i)] = i;
  for (int64_t u = 0; u < users; ++u) {
    std::vector<int64_t>& items = ds.sequences.emplace_back(static_cast<size_t>(history_items + 3));
    for (int64_t& item : items) item = 1 + draw(n_items);
    ds.user_ids.push_back(u + 1);
  }
  std::vector<int64_t> codes(static_cast<size_t>((n_items + 1) * levels), -1);
  for (int64_t i = levels; i < static_cast<int64_t>(codes.size()); ++i) codes[static_cast<size_t>(i)] = draw(codebook);
  int64_t max_group = 0;
  const std::vector<int64_t> full = semantic_id::append_disambiguation(codes, levels, &max_group);
  out.vocab_sizes.assign(static_cast<size_t>(levels), codebook);
  out.vocab_sizes.push_back(max_group);
  out.catalog = TigerCatalog::from_codes(full, n_items, out.vocab_sizes);
  return out;
}

StepBenchmarkResult benchmark_tiger_steps(TigerModel& model, const TigerBenchmarkData& data,
                                          const OptimizerConfig& optimizer, const StepBenchmarkOptions& options) {
  options.check();
  MUONREC_CHECK(model.config().vocab_sizes == data.vocab_sizes,
                "tiger benchmark: the model's vocabularies are not the benchmark catalogue's");
  const TigerTrainingBatches examples(data.catalog, data.dataset, model.config());
  std::vector<std::vector<int64_t>> batches;
  for (int64_t epoch = 1; static_cast<int64_t>(batches.size()) < options.untimed_steps + 2 * options.steps; ++epoch)
    for (std::vector<int64_t>& batch : examples.epoch_batches(options.batch_size, options.seed, epoch))
      batches.push_back(std::move(batch));
  PhiloxGenerator rng = training_generator(options.seed);
  size_t next = 0;
  StepBenchmarkResult result = time_training_steps(
      model.parameters(), model.device(), optimizer, options,
      [&](OptimizerSet& optimizer_set, const std::function<void(StepPhase)>& after_phase) {
        NVTX_RANGE("train_step");
        const TigerBatch batch = examples.batch(batches[next++], model.device());
        if (after_phase) after_phase(StepPhase::Input);
        step_on_loss(
            model.parameters(), optimizer_set, [&] { return model.loss(batch, true, rng); }, options.max_grad_norm,
            after_phase);
        return batch.targets;
      });
  result.window = model.config().window();
  return result;
}

}  // namespace muonrec
