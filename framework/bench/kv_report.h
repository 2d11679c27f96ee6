// KV-cache accounting as a library: for a ModelConfig, every attention variant
// side by side (cache parts, elements and bytes per token, ratio to MHA); the
// DeepSeek-V2 preset that reproduces the paper's numbers; and per-token decode
// FLOPs and bytes read for MLA's naive and absorbed paths. `attnlab kv` prints these.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace attnlab::bench {

struct KvRow {
  std::string variant;          // "mha", "gqa (K=8)", "mqa", "mla naive", "mla absorbed"
  std::string parts;            // per token per layer, e.g. "ckv[512] + krope[64]"
  int64_t elements_per_layer;   // per token, one layer
  int64_t elements_per_token;   // per token, all layers
  int64_t bytes_per_token;      // elements_per_token times the storage size, plus scales (int8, fp8_e4m3)
  int64_t scale_bytes_per_token;  // of which quantization scales (0 for fp32, bf16, fp16)
  double ratio_to_mha;          // MHA's elements / this variant's (57 for DeepSeek-V2's MLA)
};

struct KvTable {
  std::string title;
  int64_t n_layers = 0;
  std::string cache_dtype;      // attention.cache_dtype: fp32 | bf16 | fp16 | int8 | fp8_e4m3
  bool scaled = false;          // a quantized format: the table shows the scales' share
  std::vector<KvRow> rows;      // MHA first
};

// Every registered variant at `config`'s shape: mha, gqa (attention.n_kv_heads
// when the config is gqa, else 8 or H/2), mqa, and mla in both decode paths
// (MLA dims from config.attention, zeros as in LatentOptions::from).
// Computed from cache layouts alone: no weights are allocated.
KvTable kv_table(const ModelConfig& config);

// Per token per layer, one new token attending over `context_len` tokens.
struct DecodeCost {
  std::string path;             // "naive", "naive-latent" (cache latent, re-expand), "absorbed"
  int64_t cache_elements;       // per token per layer
  double flops;                 // multiply-adds count 2
  double cache_bytes_read;
  double weight_bytes_read;
  double intensity() const { return flops / (cache_bytes_read + weight_bytes_read); }
};
std::vector<DecodeCost> mla_decode_costs(const ModelConfig& config, int64_t context_len);

// DeepSeek-V2 (arXiv 2405.04434): 60 layers, D=5120, 128 heads of 128,
// d_c=512, d_q=1536, d_r=64, d_v=128, bf16 cache.
ModelConfig deepseek_v2_config();

std::string format_kv_table(const KvTable& table);
std::string format_decode_costs(const std::vector<DecodeCost>& costs, int64_t context_len);
// The whole `attnlab kv` report for a config.
std::string kv_report(const ModelConfig& config, int64_t context_len = 4096);
// The DeepSeek-V2 paper's KV-cache figures, computed from our cache layouts
// (elements per token); the paper prints 576, 34.6K, 15.6K, 860.2K, 110.6K, 57x.
struct DeepseekV2Check {
  int64_t mla_per_layer;     // ckv + krope of one layer (paper: 576)
  int64_t mla_60_layers;     // DeepSeek-V2 (paper: 34.6K)
  int64_t mla_27_layers;     // the small MoE model of Appendix D.2 (paper: 15.6K)
  int64_t mha_60_baseline;   // MHA with n_h*d_h = 7168 over 60 layers (paper: 860.2K)
  int64_t mha_27_baseline;   // MHA with 16 heads of 128 over 27 layers (paper: 110.6K)
  double mha128_over_mla;    // MHA with 128 heads of 128 per layer / MLA per layer (paper: 57x)
};
DeepseekV2Check deepseek_v2_check();

// `attnlab kv --preset deepseek-v2`: the table, deepseek_v2_check() beside the
// paper's figures, and decode costs.
std::string deepseek_v2_report(int64_t context_len = 4096);

// The other papers' cache figures, computed from the variants' cache layouts
// (bytes or elements per token per layer).
struct PaperChecks {
  // Zadouri, Strauss, Dao 2025, Table 5, at their 1.47B shape (d_model 2048,
  // 16 heads of 128), bf16: MHA 8192, GQA-4 2048, GTA-4 1152 bytes.
  int64_t mha_bytes, gqa4_bytes, gta4_bytes;
  // The same paper: GLA-2 (two latent heads of 2E) caches what MLA with
  // d_c = 4E does, 4E + d_r elements; at DeepSeek-V2's shape, 576.
  int64_t gla2_elements, mla_4e_elements;
  // Zhang et al. 2025 §3.3: TPA caches (R_K + R_V)(H + E) elements; at T6's
  // ranks (2, 2) with 16 heads of 64 that is 320, against MHA's 2 H E = 2048.
  int64_t tpa_elements, tpa_mha_elements;
};
PaperChecks paper_checks();
std::string format_paper_checks(const PaperChecks& checks);

// "34.6K", "860.2K", "576": elements the way the paper prints them.
std::string short_count(int64_t n);

}  // namespace attnlab::bench
