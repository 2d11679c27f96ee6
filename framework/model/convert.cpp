// MHA/GQA to MLA by SVD (see convert.h and docs/attention.md).
#include "model/convert.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "model/attention/grouped.h"
#include "model/attention/latent.h"
#include "model/attention/registry.h"

namespace attnlab::model {

namespace {

bool mha2mla_dims(const std::string& dims) { return dims == "high" || dims == "low" || dims == "uniform"; }

int64_t source_kv_heads(const ModelConfig& s) { return GroupedOptions::from(s).n_kv_heads; }

torch::Tensor index_of(const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong); }

}  // namespace

int64_t full_kv_rank(const ModelConfig& source, int64_t rope_dim) {
  const int64_t e = source.resolved_head_dim();
  return std::min(source_kv_heads(source) * (2 * e - rope_dim), source.d_model);
}

MlaConversion resolve_conversion(const ModelConfig& source, const MlaConversion& request) {
  const auto& kind = source.attention.kind;
  if (kind != "mha" && kind != "gqa" && kind != "mqa")
    throw_user_error("--to", "", fmt::format("converts MHA, GQA or MQA runs to MLA; this run's attention is {}", kind));
  if (source.position.kind != "rope")
    throw_user_error("--rope-dims", "", fmt::format("MHA2MLA keeps part of RoPE; this run's position.kind is {}",
                                                    source.position.kind));
  if (source.kv_share != 1)
    throw_user_error("--to", "", "a run with model.kv_share > 1 shares keys across layers; convert takes one cache per layer");
  const auto& p = source.position;
  const bool partial = p.fraction < 1.0;
  if (partial && !mha2mla_dims(p.dims))
    throw_user_error("--rope-dims", "", fmt::format("this run's partial RoPE (position.dims=first, fraction {}) rotates "
                                                    "a spectrum of its own; MLA's per-head key keeps frequencies of the "
                                                    "head dim (position.dims=high, low or uniform)", p.fraction));
  const std::string dims = !request.rope_dims.empty() ? request.rope_dims : partial ? p.dims : "high";
  const double fraction = request.rope_fraction > 0 ? request.rope_fraction : partial ? p.fraction : 0.25;
  if (!mha2mla_dims(dims))
    throw_user_error("--rope-dims", "", fmt::format("'{}' is not one of high, low, uniform", dims));
  if (partial && (dims != p.dims || fraction != p.fraction))
    throw_user_error("--rope-dims", "",
                     fmt::format("this run already rotates only position.dims={} at fraction {}; the conversion keeps "
                                 "those pairs (--rope-dims {} --rope-fraction {}), not others",
                                 p.dims, p.fraction, p.dims, p.fraction));
  const int64_t e = source.resolved_head_dim();
  const double w = fraction * static_cast<double>(e);
  const auto rope_dim = static_cast<int64_t>(std::llround(w));
  if (std::abs(w - static_cast<double>(rope_dim)) > 1e-9 || rope_dim % 2 != 0 || rope_dim < 2)
    throw_user_error("--rope-fraction", "", fmt::format("{} of the head dim {} gives {} rotary dims; it needs an even "
                                                        "number of at least 2", fraction, e, w));
  if (rope_dim >= e)
    throw_user_error("--rope-fraction", "", fmt::format("{} keeps every rotary pair, leaving no key dims for the "
                                                        "latent; keep fewer (MHA2MLA keeps 1/8 to 1/4)", fraction));
  const int64_t full = full_kv_rank(source, rope_dim);
  const int64_t rank = request.kv_rank > 0 ? request.kv_rank : full;
  if (rank > full)
    throw_user_error("--kv-rank", "", fmt::format("{} exceeds the joint matrix's rank bound min(K·(2E - d_r), d_model) "
                                                  "= min({}·({} - {}), {}) = {}",
                                                  rank, source_kv_heads(source), 2 * e, rope_dim, source.d_model, full));
  return MlaConversion{rank, dims, fraction};
}

std::vector<std::string> mla_overrides(const ModelConfig& source, const MlaConversion& request) {
  const auto r = resolve_conversion(source, request);
  const int64_t e = source.resolved_head_dim();
  const auto rope_dim = static_cast<int64_t>(std::llround(r.rope_fraction * static_cast<double>(e)));
  return {
      "attention.kind=mla",
      "attention.q_rank=0",
      fmt::format("attention.kv_rank={}", r.kv_rank),
      fmt::format("attention.nope_dim={}", e - rope_dim),
      fmt::format("attention.rope_dim={}", rope_dim),
      fmt::format("attention.v_dim={}", e),
      fmt::format("attention.rope_heads={}", source_kv_heads(source)),
      fmt::format("attention.rope_spectrum={}", e),
      "attention.kv_norm=none",
      "attention.rope_mode=decoupled",
      "attention.decode=absorbed",
      fmt::format("position.dims={}", r.rope_dims),
      fmt::format("position.fraction={}", r.rope_fraction),
      "model.match_params=false",
      fmt::format("model.d_ff={}", resolved_d_ff(source)),
  };
}

ConversionReport convert_to_mla(const TransformerLMImpl& source, TransformerLMImpl& target) {
  const auto& sc = source.config();
  const auto& tc = target.config();
  if (tc.attention.kind != "mla" || tc.n_layers != sc.n_layers || tc.d_model != sc.d_model ||
      tc.n_heads != sc.n_heads || tc.vocab_size != sc.vocab_size || target.d_ff() != source.d_ff())
    throw Error("convert: the target is not the MLA model of the source's shape (use mla_overrides)");
  const auto o = LatentOptions::from(tc);
  const int64_t d = sc.d_model, h = sc.n_heads, e = sc.resolved_head_dim(), k = source_kv_heads(sc);
  const int64_t r = o.rope_dim, n = e - r, rank = o.kv_rank;
  if (o.nope_dim != n || o.v_dim != e || o.rope_heads != k || o.rope_spectrum != e || o.q_rank != 0 || o.kv_norm)
    throw Error("convert: the target's MLA widths do not follow from the source (use mla_overrides)");

  // Which of each head's pairs (i, i + E/2) stay rotary: the target's selection.
  const auto pairs = target.position().rotary_pairs(e);
  if (static_cast<int64_t>(pairs.size()) != r / 2) throw Error("convert: the target's position keeps another number of pairs");
  std::vector<int64_t> rope_idx(pairs.begin(), pairs.end()), nope_idx;
  for (int64_t p : pairs) rope_idx.push_back(p + e / 2);
  std::vector<bool> is_rope(static_cast<size_t>(e), false);
  for (int64_t i : rope_idx) is_rope[static_cast<size_t>(i)] = true;
  for (int64_t i = 0; i < e; ++i)
    if (!is_rope[static_cast<size_t>(i)]) nope_idx.push_back(i);
  const auto rope_i = index_of(rope_idx), nope_i = index_of(nope_idx);

  torch::NoGradGuard no_grad;
  ConversionReport report;
  report.kv_rank = rank;
  report.full_rank = full_kv_rank(sc, r);
  // Everything outside attention is the source's, parameter by parameter.
  auto src = source.named_parameters();
  for (auto& p : target.named_parameters()) {
    if (p.key().find(".attn.") != std::string::npos) continue;
    const auto* from = src.find(p.key());
    if (from == nullptr || from->sizes() != p.value().sizes())
      throw Error(fmt::format("convert: the source has no parameter '{}' of the target's shape", p.key()));
    p.value().copy_(*from);
  }
  for (int64_t l = 0; l < sc.n_layers; ++l) {
    const auto& sa = dynamic_cast<const GroupedAttention&>(*source.blocks()[static_cast<size_t>(l)]->attn);
    auto& ta = dynamic_cast<LatentAttention&>(*target.blocks()[static_cast<size_t>(l)]->attn);
    // In fp64, on the CPU: the factorisation is the only approximation, and only below full rank.
    auto wq_HED = sa.wq->weight.detach().to(torch::kCPU, torch::kFloat64).view({h, e, d});
    auto wk_KED = sa.wk->weight.detach().to(torch::kCPU, torch::kFloat64).view({k, e, d});
    auto wv_KED = sa.wv->weight.detach().to(torch::kCPU, torch::kFloat64).view({k, e, d});
    // Queries: per head, the nope dims first, then the rotary pairs in rotate-half order.
    auto wq = torch::cat({wq_HED.index_select(1, nope_i), wq_HED.index_select(1, rope_i)}, 1).reshape({h * e, d});
    auto k_nope = wk_KED.index_select(1, nope_i).reshape({k * n, d});
    auto k_rope = wk_KED.index_select(1, rope_i).reshape({k * r, d});
    auto joint = torch::cat({k_nope, wv_KED.reshape({k * e, d})}, 0);  // [K(2E - d_r), D]
    auto [u, s, vh] = torch::linalg_svd(joint, /*full_matrices=*/false);
    auto s2 = s.pow(2);
    report.energy_kept.push_back((s2.narrow(0, 0, rank).sum() / s2.sum()).item<double>());
    auto root = s.narrow(0, 0, rank).sqrt();
    auto down = root.unsqueeze(1) * vh.narrow(0, 0, rank);   // W_DKV [R, D]
    auto up = u.narrow(1, 0, rank) * root.unsqueeze(0);       // [K(2E - d_r), R]
    auto up_k_KNR = up.narrow(0, 0, k * n).view({k, n, rank});
    auto up_v_KER = up.narrow(0, k * n, k * e).view({k, e, rank});
    // wkv_b rows: head h, its [d_n key, d_v value] from its kv group's up-projections.
    auto group = torch::arange(h, torch::kLong).div(h / k, "floor");
    auto wkv_b = torch::cat({up_k_KNR.index_select(0, group), up_v_KER.index_select(0, group)}, 1).reshape({h * (n + e), rank});
    auto copy = [](torch::nn::Linear& lin, const torch::Tensor& w) { lin->weight.copy_(w.to(lin->weight.options())); };
    copy(ta.wq, wq);
    copy(ta.wkv_a, torch::cat({down, k_rope}, 0));
    copy(ta.wkv_b, wkv_b);
    copy(ta.wo, sa.wo->weight.detach());
  }
  return report;
}

}  // namespace attnlab::model
