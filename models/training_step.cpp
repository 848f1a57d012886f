#include "muonrec/models/training_step.h"

#include "muonrec/engine/autograd.h"
#include "muonrec/engine/nvtx.h"

namespace muonrec {

const char* step_phase_name(StepPhase phase) {
  switch (phase) {
    case StepPhase::Input:
      return "input";
    case StepPhase::Forward:
      return "forward";
    case StepPhase::Backward:
      return "backward";
    case StepPhase::Optimizer:
      return "optimizer";
  }
  return "?";
}

TrainingStepOutcome step_on_loss(ParameterList& parameters, OptimizerSet& optimizer,
                                 const std::function<Tensor()>& forward, float max_grad_norm,
                                 const std::function<void(StepPhase)>& after_phase) {
  auto end_of = [&](StepPhase phase) {
    if (after_phase) after_phase(phase);
  };
  TrainingStepOutcome outcome;
  parameters.zero_grad();
  outcome.loss = forward();
  end_of(StepPhase::Forward);
  backward(outcome.loss);
  end_of(StepPhase::Backward);
  if (max_grad_norm > 0) outcome.grad_norm = parameters.clip_grad_norm(max_grad_norm);
  optimizer.step();
  end_of(StepPhase::Optimizer);
  return outcome;
}

TrainingStepOutcome training_step(SequentialModel& model, OptimizerSet& optimizer, const data::Batch& batch,
                                  PhiloxGenerator& generator, float max_grad_norm,
                                  const std::function<void(StepPhase)>& after_phase) {
  NVTX_RANGE("train_step");
  // The model turns the window into its own input (e.g. BERT4Rec's cloze masking), drawing from
  // the same generator as dropout so a resumed run replays it.
  SequenceBatch input = model.prepare_training_batch(batch, generator);
  if (after_phase) after_phase(StepPhase::Input);
  TrainingStepOutcome outcome = step_on_loss(
      model.parameters(), optimizer, [&] { return model.loss(input, true, generator); }, max_grad_norm, after_phase);
  outcome.tokens = static_cast<int64_t>(input.target_items.size());
  return outcome;
}

}  // namespace muonrec
