// What the run file records about the model: parameter counts, the attention
// and position variants, and the KV cache's exact cost per token.
#pragma once

#include "config/run_config.h"
#include "model/transformer.h"
#include "results/run_log.h"

namespace attnlab::train {

// Writes the /model attributes of the run file.
void write_model_attrs(results::RunLog& log, model::TransformerLMImpl& model, const RunConfig& config);

}  // namespace attnlab::train
