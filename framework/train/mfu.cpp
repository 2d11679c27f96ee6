// FLOPs per token and the peak-throughput table behind MFU (see mfu.h).
#include "train/mfu.h"

#include <array>

#include "model/attention/registry.h"

namespace attnlab::train {

double model_flops_per_token(const model::TransformerLMImpl& model, int64_t seq_len) {
  const ModelConfig& c = model.config();
  int64_t n = 0;
  for (const auto& p : model.named_parameters()) {
    const std::string& name = p.key();
    const bool lookup = name.starts_with("position.") || (!c.tie_embeddings && name.starts_with("wte."));
    if (!lookup) n += p.value().numel();
  }
  const auto dims = model::attention_entry(c.attention.kind).head_dims(c);
  const int64_t d_qk = dims.qk, d_v = dims.v;
  const double attention = 6.0 * static_cast<double>(c.n_layers) * static_cast<double>(seq_len) *
                           static_cast<double>(c.n_heads) * static_cast<double>(d_qk + d_v);
  return 6.0 * static_cast<double>(n) + attention;
}

std::optional<double> table_peak_tflops(const std::string& device_name, torch::ScalarType dtype) {
  struct Peak {
    const char* name_contains;
    double bf16, fp32;
  };
  // NVIDIA datasheets, dense (no 2:4 sparsity). First match wins, so the
  // PCIe H100 precedes the SXM one; the H100 NVL is left out (unknown).
  static constexpr std::array<Peak, 4> kPeaks = {{
      {"H100 PCIe", 756.5, 51.2},
      {"H100", 989.4, 66.9},  // SXM5 (reported as "NVIDIA H100 80GB HBM3")
      {"H200", 989.4, 66.9},
      {"A100", 312.0, 19.5},
  }};
  if (device_name.find("NVL") != std::string::npos) return std::nullopt;
  for (const auto& p : kPeaks) {
    if (device_name.find(p.name_contains) == std::string::npos) continue;
    if (dtype == torch::kBFloat16) return p.bf16;
    if (dtype == torch::kFloat32) return p.fp32;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<double> peak_tflops(const std::string& device_name, torch::ScalarType dtype, double override_tflops) {
  if (override_tflops > 0) return override_tflops;
  return table_peak_tflops(device_name, dtype);
}

}  // namespace attnlab::train
