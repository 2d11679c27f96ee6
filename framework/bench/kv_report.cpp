// KV-cache accounting tables and MLA decode costs (see kv_report.h).
#include "bench/kv_report.h"

#include <fmt/format.h>

#include <algorithm>

#include "model/attention/latent.h"
#include "model/attention/registry.h"
#include "model/kv_cache.h"

namespace attnlab::bench {

using model::attention_entry;
using model::CacheLayout;

namespace {

// A one-kind shape of `n_heads` heads of `head_dim`, d_model their product:
// the papers' accounting shapes.
ModelConfig heads_shape(const std::string& kind, int64_t n_layers, int64_t n_heads, int64_t head_dim) {
  ModelConfig c;
  c.n_layers = n_layers;
  c.n_heads = n_heads;
  c.head_dim = head_dim;
  c.d_model = n_heads * head_dim;
  c.attention.kind = kind;
  return c;
}

KvRow row(const std::string& name, const CacheLayout& layout, const ModelConfig& c, const model::CacheFormat& format) {
  KvRow r;
  r.variant = name;
  r.parts = layout.describe();
  r.elements_per_layer = layout.elements_per_token();
  // Over the layers: with model.kv_share some layers cache nothing of their own.
  r.elements_per_token = r.bytes_per_token = r.scale_bytes_per_token = 0;
  for (const auto& l : model::layer_layouts(c)) {
    r.elements_per_token += l.elements_per_token();
    r.bytes_per_token += l.bytes_per_token(format);
    r.scale_bytes_per_token += l.scale_bytes_per_token(format);
  }
  r.ratio_to_mha = 0.0;
  return r;
}

}  // namespace

KvTable kv_table(const ModelConfig& config) {
  const auto format = model::parse_cache_format(config.attention.cache_dtype);
  KvTable t;
  t.n_layers = config.n_layers;
  t.cache_dtype = config.attention.cache_dtype;
  t.scaled = format.scaled;
  t.title = fmt::format("KV cache per token: {} layers, d_model {}, {} heads of {}, cache {}", config.n_layers,
                        config.d_model, config.n_heads, config.resolved_head_dim(), config.attention.cache_dtype);
  if (config.kv_share > 1)
    t.title += fmt::format(", model.kv_share {} (per token: the layers that cache; elem/layer: one of them)", config.kv_share);
  // Each variant says which rows it shows at this shape (gqa its K, mla both decode paths, ...).
  for (const auto& entry : model::attention_registry())
    for (const auto& [label, c] : entry.kv_rows(config)) t.rows.push_back(row(label, entry.layout(c), c, format));
  const double mha = static_cast<double>(t.rows.front().elements_per_layer);
  for (auto& r : t.rows) r.ratio_to_mha = mha / static_cast<double>(r.elements_per_layer);
  return t;
}

std::vector<DecodeCost> mla_decode_costs(const ModelConfig& config, int64_t context_len) {
  auto c = model::with_kind(config, "mla");
  c.attention.set("rope_mode", "decoupled");
  const auto o = model::LatentOptions::from(c);
  const double h = static_cast<double>(o.n_heads), n = static_cast<double>(o.nope_dim),
               r = static_cast<double>(o.rope_dim), v = static_cast<double>(o.v_dim),
               cr = static_cast<double>(o.kv_rank), dq = static_cast<double>(o.q_rank),
               d = static_cast<double>(o.d_model), l = static_cast<double>(context_len);
  const auto format = model::parse_cache_format(c.attention.cache_dtype);
  // Weights are read in the cache dtype, or in bf16 beside a quantized cache
  // (int8 or fp8 weights are no part of attnlab).
  const double elem = static_cast<double>(format.scaled ? 2 : format.storage_bytes());
  // Weights every path reads once per token: query, W_DKV, W_UKV, W_O.
  const double w_q = dq > 0 ? d * dq + dq + dq * h * (n + r) : d * h * (n + r);
  const double w_kv_a = d * (cr + r) + cr, w_kv_b = cr * h * (n + v), w_o = h * v * d;
  const double weights_bytes = (w_q + w_kv_a + w_kv_b + w_o) * elem;
  const double common = 2 * (w_q + w_kv_a + w_o);
  const double attend_full = 2 * h * l * (n + r) + 2 * h * l * v;  // q·k over L keys, p·v over L values

  // Cache bytes per token from MLA's own layouts in each decode mode (a
  // quantized cache's scales included).
  auto naive_c = c, absorbed_c = c;
  naive_c.attention.set("decode", "naive");
  absorbed_c.attention.set("decode", "absorbed");
  const auto naive_layout = attention_entry("mla").layout(naive_c), latent_layout = attention_entry("mla").layout(absorbed_c);
  const double naive_bytes = static_cast<double>(naive_layout.bytes_per_token(format)),
               latent_bytes = static_cast<double>(latent_layout.bytes_per_token(format));
  const int64_t naive_elems = naive_layout.elements_per_token(), latent_elems = latent_layout.elements_per_token();
  std::vector<DecodeCost> out;
  // naive: up-project only the new token, cache and read full k, v.
  out.push_back({"naive", naive_elems, common + 2 * w_kv_b + attend_full, l * naive_bytes, weights_bytes});
  // naive-latent: cache the latent but re-expand all L tokens every step.
  out.push_back({"naive-latent", latent_elems, common + 2 * w_kv_b * l + attend_full, l * latent_bytes,
                 weights_bytes});
  // absorbed: q~ = q_nope W_UK (2·H·d_n·C), scores over C+R, p·ckv over C, W_UV (2·H·C·d_v).
  out.push_back({"absorbed", latent_elems,
                 common + 2 * h * n * cr + 2 * h * l * (cr + r) + 2 * h * l * cr + 2 * h * cr * v, l * latent_bytes,
                 weights_bytes});
  return out;
}

ModelConfig deepseek_v2_config() {
  ModelConfig c;
  c.n_layers = 60;
  c.d_model = 5120;
  c.n_heads = 128;
  c.head_dim = 128;
  c.vocab_size = 102400;
  c.max_seq_len = 131072;
  c.attention.kind = "mla";
  c.attention.set("q_rank", 1536).set("kv_rank", 512).set("nope_dim", 128).set("rope_dim", 64).set("v_dim", 128);
  c.attention.cache_dtype = "bf16";
  return c;
}

std::string short_count(int64_t n) {
  if (n < 1000) return fmt::format("{}", n);
  if (n < 1000000) return fmt::format("{:.1f}K", static_cast<double>(n) / 1e3);
  return fmt::format("{:.2f}M", static_cast<double>(n) / 1e6);
}

std::string format_kv_table(const KvTable& t) {
  std::string out = t.title + "\n";
  size_t name_w = 14, parts_w = 28;  // widened to the longest row
  for (const auto& r : t.rows) {
    name_w = std::max(name_w, r.variant.size());
    parts_w = std::max(parts_w, r.parts.size());
  }
  // A quantized cache adds a column: the fp16 scales inside bytes/token and their share.
  out += fmt::format("{:<{}} {:<{}} {:>12} {:>14} {:>14} {:>10}{}\n", "variant", name_w, "parts per token per layer",
                     parts_w, "elem/layer", "elem/token", "bytes/token", "MHA/this",
                     t.scaled ? fmt::format(" {:>16}", "of which scales") : "");
  for (const auto& r : t.rows) {
    const std::string scales =
        t.scaled ? fmt::format(" {:>16}", fmt::format("{} ({:.1f}%)", r.scale_bytes_per_token,
                                                      100.0 * static_cast<double>(r.scale_bytes_per_token) /
                                                          static_cast<double>(std::max<int64_t>(1, r.bytes_per_token))))
                 : "";
    out += fmt::format("{:<{}} {:<{}} {:>12} {:>14} {:>14} {:>9.1f}x{}\n", r.variant, name_w, r.parts, parts_w,
                       r.elements_per_layer, fmt::format("{} ({})", r.elements_per_token, short_count(r.elements_per_token)),
                       r.bytes_per_token, r.ratio_to_mha, scales);
  }
  if (t.scaled)
    out += fmt::format("bytes/token count {} values plus one fp16 scale per vector along each part's last dim "
                       "(per token per head); MHA/this compares elements\n",
                       t.cache_dtype);
  return out;
}

std::string format_decode_costs(const std::vector<DecodeCost>& costs, int64_t context_len) {
  std::string out = fmt::format("MLA decode, per new token per layer, at context {}:\n", context_len);
  out += fmt::format("{:<14} {:>12} {:>14} {:>16} {:>16} {:>12}\n", "path", "cache elem", "GFLOP",
                     "cache MB read", "weights MB (B=1)", "FLOP/byte");
  for (const auto& c : costs)
    out += fmt::format("{:<14} {:>12} {:>14.4f} {:>16.3f} {:>16.3f} {:>12.1f}\n", c.path, c.cache_elements,
                       c.flops / 1e9, c.cache_bytes_read / 1e6, c.weight_bytes_read / 1e6, c.intensity());
  return out;
}

std::string kv_report(const ModelConfig& config, int64_t context_len) {
  return format_kv_table(kv_table(config)) + "\n" + format_decode_costs(mla_decode_costs(config, context_len), context_len) +
         "\n" + format_paper_checks(paper_checks());
}

PaperChecks paper_checks() {
  const auto bf16 = torch::kBFloat16;
  auto shape = [](const std::string& kind, int64_t n_heads, int64_t head_dim) {
    return heads_shape(kind, 1, n_heads, head_dim);
  };
  auto layout = [](const ModelConfig& c) { return attention_entry(c.attention.kind).layout(c); };
  PaperChecks k;
  auto gqa4 = shape("gqa", 16, 128), gta4 = shape("gta", 16, 128);
  gqa4.attention.set("n_kv_heads", 4);
  gta4.attention.set("n_kv_heads", 4);
  k.mha_bytes = layout(shape("mha", 16, 128)).bytes_per_token(bf16);
  k.gqa4_bytes = layout(gqa4).bytes_per_token(bf16);
  k.gta4_bytes = layout(gta4).bytes_per_token(bf16);
  auto gla2 = shape("gla", 128, 128), mla = shape("mla", 128, 128);
  gla2.attention.set("n_latent_heads", 2).set("rope_dim", 64);  // kv_rank 0: 2E per latent head
  mla.attention.set("kv_rank", 4 * 128).set("rope_dim", 64);
  k.gla2_elements = layout(gla2).elements_per_token();
  k.mla_4e_elements = layout(mla).elements_per_token();
  auto tpa = shape("tpa", 16, 64);
  tpa.attention.set("k_rank", 2).set("v_rank", 2);
  k.tpa_elements = layout(tpa).elements_per_token();
  k.tpa_mha_elements = layout(shape("mha", 16, 64)).elements_per_token();
  return k;
}

std::string format_paper_checks(const PaperChecks& k) {
  std::string out = "Paper checks, per token per layer, computed from the cache layouts:\n";
  out += fmt::format("  GTA/GLA Table 5 (16 heads of 128, bf16 bytes): MHA {} (paper 8192), GQA-4 {} (paper 2048), "
                     "GTA-4 {} (paper 1152)\n",
                     k.mha_bytes, k.gqa4_bytes, k.gta4_bytes);
  out += fmt::format("  GLA-2 with latent heads of 2E = MLA with d_c = 4E (E 128, d_r 64, elements): {} and {} "
                     "(paper: 4E + d_r = 576)\n",
                     k.gla2_elements, k.mla_4e_elements);
  out += fmt::format("  TPA (R_K + R_V)(H + E) at R 2+2, 16 heads of 64 (elements): {} (formula 320; MHA {})\n",
                     k.tpa_elements, k.tpa_mha_elements);
  return out;
}

DeepseekV2Check deepseek_v2_check() {
  // Per-layer elements come from each variant's own cache layout, so a change
  // to MLA's or MHA's layout shows up here against the paper's figures.
  const auto per_layer = [](const ModelConfig& c) {
    return attention_entry(c.attention.kind).layout(c).elements_per_token();
  };
  const auto mha = [](int64_t n_layers, int64_t n_heads, int64_t head_dim) {
    return heads_shape("mha", n_layers, n_heads, head_dim);
  };
  const auto v2 = deepseek_v2_config();
  auto small = v2;  // the 27-layer model keeps the same latent (d_c = 512, d_r = 64)
  small.n_layers = 27;
  DeepseekV2Check r;
  r.mla_per_layer = per_layer(v2);
  r.mla_60_layers = per_layer(v2) * v2.n_layers;
  r.mla_27_layers = per_layer(small) * small.n_layers;
  // The paper's MHA baselines (Appendix D.2): n_h*d_h = 7168 (56 heads of 128)
  // for the large model, 16 heads of 128 for the small MoE model.
  const auto large_mha = mha(60, 56, 128), small_mha = mha(27, 16, 128);
  r.mha_60_baseline = per_layer(large_mha) * large_mha.n_layers;
  r.mha_27_baseline = per_layer(small_mha) * small_mha.n_layers;
  r.mha128_over_mla =
      static_cast<double>(per_layer(mha(1, 128, 128))) / static_cast<double>(r.mla_per_layer);
  return r;
}

std::string deepseek_v2_report(int64_t context_len) {
  const auto c = deepseek_v2_config();
  const auto k = deepseek_v2_check();
  std::string out = format_kv_table(kv_table(c)) + "\n";
  out += "DeepSeek-V2 paper check (elements per token):\n";
  out += fmt::format("  MLA per layer:           {:>8}   paper 576\n", k.mla_per_layer);
  out += fmt::format("  MLA, 60 layers:          {:>8}   paper 34.6K   (MHA baseline {}, paper 860.2K)\n",
                     short_count(k.mla_60_layers), short_count(k.mha_60_baseline));
  out += fmt::format("  MLA, 27 layers:          {:>8}   paper 15.6K   (MHA baseline {}, paper 110.6K)\n",
                     short_count(k.mla_27_layers), short_count(k.mha_27_baseline));
  out += fmt::format("  MHA 128x128 / MLA:       {:>8.1f}x  paper 57x\n", k.mha128_over_mla);
  out += "\n" + format_decode_costs(mla_decode_costs(c, context_len), context_len);
  return out;
}

}  // namespace attnlab::bench
