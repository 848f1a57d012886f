// One optimizer step on a batch, exactly as the trainers take it: the model's input from the batch,
// forward and loss, backward, optional global-norm clipping, the optimizer step. Shared by the
// trainers (sequential and TIGER) and the step benchmark, which times the phases through the hook.
#pragma once

#include <cstdint>
#include <functional>

#include "muonrec/data/batcher.h"
#include "muonrec/models/sequential_model.h"
#include "muonrec/optim/param_groups.h"

namespace muonrec {

// The generator a training run draws dropout, BERT4Rec's masks and sampled negatives from: a
// stream of its own per run seed, apart from the one the weights were drawn from.
inline PhiloxGenerator training_generator(uint64_t seed) { return PhiloxGenerator(seed ^ 0x5eed5eedull); }

enum class StepPhase { Input, Forward, Backward, Optimizer };
inline constexpr StepPhase kStepPhases[] = {StepPhase::Input, StepPhase::Forward, StepPhase::Backward,
                                            StepPhase::Optimizer};
const char* step_phase_name(StepPhase phase);  // "input", "forward", "backward", "optimizer"

struct TrainingStepOutcome {
  Tensor loss;       // on the model's device: reading it synchronises
  Tensor grad_norm;  // before clipping; undefined when not clipping
  int64_t tokens = 0;  // positions with a target trained on
};

// The phases after the input: gradients zeroed, forward() computing the loss, backward, clipping
// (when max_grad_norm > 0), the optimizer step. after_phase, when given, runs at the end of each
// phase (the benchmark synchronises there). The outcome's tokens are the caller's to fill.
TrainingStepOutcome step_on_loss(ParameterList& parameters, OptimizerSet& optimizer,
                                 const std::function<Tensor()>& forward, float max_grad_norm,
                                 const std::function<void(StepPhase)>& after_phase = {});

// A sequential model's whole step, from the batcher's window (data/batcher.h).
TrainingStepOutcome training_step(SequentialModel& model, OptimizerSet& optimizer, const data::Batch& batch,
                                  PhiloxGenerator& generator, float max_grad_norm,
                                  const std::function<void(StepPhase)>& after_phase = {});

}  // namespace muonrec
