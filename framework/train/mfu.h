// Model FLOPs utilisation: the model's training FLOP/s over the device's peak.
//
// Model FLOPs per token (PaLM, Chowdhery et al. 2022, appendix B):
//   6 N + 6 L T H (d_qk + d_v)
// N counts the parameters a token's forward multiplies by (all of them except
// lookup tables: an untied input embedding and learned position embeddings;
// a tied embedding is the LM head and counts). The second term is attention's
// QK^T and AV over a window of T tokens, forward and backward, without
// causal halving; with d_qk = d_v = d_model / H it is PaLM's 12 L T d_model.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>

#include "model/transformer.h"

namespace attnlab::train {

double model_flops_per_token(const model::TransformerLMImpl& model, int64_t seq_len);

// Dense peak TFLOP/s of a device by its name (as device_description() gives
// it) for a compute dtype: bf16 tensor-core peak for bf16, non-tensor fp32
// for fp32. nullopt for a device not in the table (and for every CPU).
std::optional<double> table_peak_tflops(const std::string& device_name, torch::ScalarType dtype);

// The peak MFU divides by: `override_tflops` when > 0 (train.peak_tflops),
// else the table's; nullopt when neither knows the device.
std::optional<double> peak_tflops(const std::string& device_name, torch::ScalarType dtype, double override_tflops);

}  // namespace attnlab::train
