// What the run file records about the model: parameter counts, the attention
// and position variants, and the KV cache's exact cost per token.
#pragma once

#include "config/run_config.h"
#include "model/transformer.h"
#include "results/run_log.h"

namespace attnlab::train {

// Writes the /model attributes of the run file.
void write_model_attrs(results::RunLog& log, model::TransformerLMImpl& model, const RunConfig& config);

// The attention kernel a training forward of this config runs: "math" for
// attention.backend=math, else "sdpa/<kernel>" with the kernel SDPA picks for
// the training shape on `device` in the compute dtype (flash, efficient,
// cudnn or math; see model::sdpa_kernel), e.g. "sdpa/efficient" for MLA's
// unequal query and value head dims on a GPU.
std::string attention_kernel(const RunConfig& config, const torch::Device& device, torch::ScalarType dtype);

}  // namespace attnlab::train
