// MLA forward, naive and absorbed (see latent.h and docs/attention.md).
#include "model/attention/latent.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "config/attention/mla.h"
#include "core/error.h"
#include "model/attention/inner.h"
#include "model/attention/registry.h"
#include "runtime/autocast.h"

namespace attnlab::model {

namespace {
const char* kCoupledAbsorbed =
    "attention.decode=absorbed needs rope_mode=decoupled or none: with coupled RoPE the rotation R(pos) sits "
    "between the query and W_UK, so W_UK cannot be folded into the query and every cached key would have to "
    "be re-expanded and re-rotated; use attention.decode=naive";

RopeMode parse_rope_mode(const std::string& name) {
  if (name == "decoupled") return RopeMode::kDecoupled;
  if (name == "none") return RopeMode::kNone;
  if (name == "coupled") return RopeMode::kCoupled;
  throw_user_error("attention.rope_mode", "", fmt::format("'{}' is not one of decoupled, none, coupled", name));
}
}  // namespace

LatentOptions LatentOptions::widths(const ModelConfig& config) {
  const auto& a = config.attention;
  const auto w = config::latent_widths(config);
  LatentOptions o;
  o.d_model = config.d_model;
  o.n_heads = config.n_heads;
  o.q_rank = w.q_rank;
  o.kv_rank = w.kv_rank;
  o.nope_dim = w.nope_dim;
  o.rope_mode = parse_rope_mode(a.word("rope_mode"));
  o.rope_dim = w.rope_dim;
  o.v_dim = w.v_dim;
  o.rope_heads = o.rope_dim > 0 ? w.rope_heads : 1;
  o.rope_spectrum = w.rope_spectrum;
  o.kv_norm = a.word("kv_norm") == "rms";
  o.decode = parse_decode(a.word("decode"));
  o.backend = parse_backend(a.backend);
  return o;
}

LatentOptions LatentOptions::from(const ModelConfig& config) {
  const LatentOptions o = widths(config);
  if (o.rope_dim % 2 != 0)
    throw_user_error("attention.rope_dim", "", fmt::format("rotary dims come in pairs, got {}", o.rope_dim));
  if (o.rope_mode == RopeMode::kCoupled && o.nope_dim % 2 != 0)
    throw_user_error("attention.nope_dim", "", fmt::format("coupled RoPE rotates the nope dims, which must be even, got {}", o.nope_dim));
  return o;
}

int64_t LatentOptions::params() const {
  const int64_t q = q_rank > 0 ? d_model * q_rank + q_rank + q_rank * n_heads * qk_dim() : d_model * n_heads * qk_dim();
  return q + d_model * (kv_rank + rope_heads * rope_dim) + (kv_norm ? kv_rank : 0) +
         kv_rank * n_heads * (nope_dim + v_dim) + n_heads * v_dim * d_model;
}

LatentAttention::LatentAttention(const LatentOptions& options) : Attention(options.reads_shared), options_(options) {
  const auto& o = options_;
  if (o.rope_mode == RopeMode::kCoupled && o.decode == DecodeMode::kAbsorbed)
    throw_user_error("attention.decode", "", kCoupledAbsorbed);
  auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
  if (o.q_rank > 0) {
    wq_a = register_module("wq_a", linear(o.d_model, o.q_rank));
    q_norm = register_module("q_norm", Norm("rms", o.q_rank));
    wq_b = register_module("wq_b", linear(o.q_rank, o.n_heads * o.qk_dim()));
  } else {
    wq = register_module("wq", linear(o.d_model, o.n_heads * o.qk_dim()));
  }
  if (!o.reads_shared) {
    wkv_a = register_module("wkv_a", linear(o.d_model, o.kv_rank + o.rope_heads * o.rope_dim));
    if (o.kv_norm) kv_norm = register_module("kv_norm", Norm("rms", o.kv_rank));
  }
  wkv_b = register_module("wkv_b", linear(o.kv_rank, o.n_heads * (o.nope_dim + o.v_dim)));
  wo = register_module("wo", linear(o.n_heads * o.v_dim, o.d_model));
}

void LatentAttention::set_decode(DecodeMode mode) {
  if (mode == DecodeMode::kAbsorbed && options_.rope_mode == RopeMode::kCoupled)
    throw_user_error("attention.decode", "", kCoupledAbsorbed);
  options_.decode = mode;
}

CacheLayout LatentAttention::layout(const LatentOptions& o) {
  if (o.decode == DecodeMode::kNaive)
    return CacheLayout{{{"k", {o.n_heads, o.qk_dim()}}, {"v", {o.n_heads, o.v_dim}}}};
  if (o.reads_shared) return CacheLayout{};
  CacheLayout l{{{"ckv", {o.kv_rank}}}};
  if (o.rope_dim > 0 && o.rope_heads == 1) l.parts.push_back({"krope", {o.rope_dim}});
  if (o.rope_dim > 0 && o.rope_heads > 1) l.parts.push_back({"krope", {o.rope_heads, o.rope_dim}});
  return l;
}

double LatentAttention::softmax_scale(const AttnContext& ctx) const {
  // 1/sqrt(d_n + d_r), the per-head width of q·k: never the latent width
  // d_c + d_r the absorbed path happens to contract over.
  return ctx.position->softmax_scale_factor() / std::sqrt(static_cast<double>(options_.qk_dim()));
}

torch::Tensor LatentAttention::rotate(const torch::Tensor& x, const AttnContext& ctx) const {
  const auto& o = options_;
  if (o.rope_spectrum <= o.rope_dim) return ctx.position->rotate(x, ctx.start);
  // Pair j of the key (dims j, j + R/2) is pair P[j] of a head of width S
  // (dims P[j], P[j] + S/2): place it there, rotate the wide head, read it back.
  const int64_t s = o.rope_spectrum, half = o.rope_dim / 2;
  const auto pairs = ctx.position->rotary_pairs(s);
  if (pairs.empty()) return ctx.position->rotate(x, ctx.start);  // an encoding that rotates nothing
  if (static_cast<int64_t>(pairs.size()) != half)
    throw Error(fmt::format("mla: the position keeps {} pairs of {}, the rotary key has {} (the rules refuse this)",
                            pairs.size(), s, half));
  std::vector<int64_t> index(pairs.begin(), pairs.end());
  for (int64_t p : pairs) index.push_back(p + s / 2);
  auto idx = torch::tensor(index, torch::TensorOptions().dtype(torch::kLong).device(x.device()));
  auto sizes = x.sizes().vec();
  sizes.back() = s;
  auto wide = torch::zeros(sizes, x.options()).index_copy(-1, idx, x);
  return ctx.position->rotate(wide, ctx.start).index_select(-1, idx);
}

torch::Tensor LatentAttention::forward(const torch::Tensor& x_BTD, AttnContext& ctx) {
  const auto& o = options_;
  const int64_t b = x_BTD.size(0), t = x_BTD.size(1);
  auto q = o.q_rank > 0 ? wq_b(q_norm(wq_a(x_BTD))) : wq(x_BTD);
  auto q_BHTE = q.view({b, t, o.n_heads, o.qk_dim()}).transpose(1, 2);
  auto q_nope_BHTN = q_BHTE.narrow(-1, 0, o.nope_dim);
  auto q_pe_BHTR = q_BHTE.narrow(-1, o.nope_dim, o.rope_dim);
  if (o.rope_dim > 0) q_pe_BHTR = rotate(q_pe_BHTR, ctx);
  // The state: the (normalised) latent and, with decoupled rotary keys, those
  // keys rotated: [B, T, R] for one, [B, T, G, R] for G.
  const auto fresh = fresh_state(ctx, [&] {
    auto kv_BTX = wkv_a(x_BTD);
    auto ckv_BTC = kv_BTX.narrow(-1, 0, o.kv_rank);
    std::vector<torch::Tensor> parts{o.kv_norm ? kv_norm(ckv_BTC) : ckv_BTC};
    auto kpe = kv_BTX.narrow(-1, o.kv_rank, o.rope_heads * o.rope_dim);
    if (o.rope_dim > 0 && o.rope_heads == 1) parts.push_back(rotate(kpe, ctx));
    if (o.rope_dim > 0 && o.rope_heads > 1)
      parts.push_back(rotate(kpe.view({b, t, o.rope_heads, o.rope_dim}).transpose(1, 2), ctx).transpose(1, 2));
    return parts;
  });
  const auto& ckv_BTC = fresh[0];
  // Without a rotary key, an empty [B, T, 0] stands in for it.
  const auto kpe_BTR = o.rope_dim > 0 ? fresh[1] : ckv_BTC.narrow(-1, 0, 0);

  torch::Tensor o_BHTF;
  if (o.decode == DecodeMode::kNaive) {
    o_BHTF = naive(q_nope_BHTN, q_pe_BHTR, ckv_BTC, kpe_BTR, ctx);
  } else if (ctx.start == 0) {
    // Prefill (and training) with no past tokens: the naive formulation is
    // the same math and far cheaper than attending per head over the latent;
    // the latent is what gets cached.
    all_state(ctx, fresh);
    AttnContext local = ctx;
    local.cache = nullptr;
    o_BHTF = naive(q_nope_BHTN, q_pe_BHTR, ckv_BTC, kpe_BTR, local);
    ctx.ran = local.ran;
  } else {
    auto all = all_state(ctx, fresh);
    o_BHTF = absorbed(q_nope_BHTN, q_pe_BHTR, all[0], o.rope_dim > 0 ? all[1] : kpe_BTR, ctx);
  }
  return wo(o_BHTF.transpose(1, 2).reshape({b, t, o.n_heads * o.v_dim}));
}

torch::Tensor LatentAttention::naive(const torch::Tensor& q_nope_BHTN, const torch::Tensor& q_pe_BHTR,
                                     const torch::Tensor& ckv_BTC, const torch::Tensor& kpe_BTR, AttnContext& ctx) {
  const auto& o = options_;
  const int64_t b = ckv_BTC.size(0), t = ckv_BTC.size(1);
  auto kv_BTHX = wkv_b(ckv_BTC).view({b, t, o.n_heads, o.nope_dim + o.v_dim});
  auto k_nope_BHTN = kv_BTHX.narrow(-1, 0, o.nope_dim).transpose(1, 2);
  auto v_BTHF = kv_BTHX.narrow(-1, o.nope_dim, o.v_dim);
  auto q_nope = q_nope_BHTN;
  if (o.rope_mode == RopeMode::kCoupled) {
    // RoPE on the up-projected key: correct, but it ties every cached key to
    // W_UK, which is why this mode cannot absorb.
    q_nope = ctx.position->rotate(q_nope, ctx.start);
    k_nope_BHTN = ctx.position->rotate(k_nope_BHTN, ctx.start);
  }
  // One rotary key shared by all heads, or G keys each shared by H/G heads.
  auto kpe_BHTR = kpe_BTR.dim() == 3 ? kpe_BTR.unsqueeze(1).expand({b, o.n_heads, t, o.rope_dim})
                                     : kpe_BTR.transpose(1, 2).repeat_interleave(o.n_heads / o.rope_heads, 1);
  auto q_BHTE = torch::cat({q_nope, q_pe_BHTR}, -1);
  auto k_BHTE = torch::cat({k_nope_BHTN, kpe_BHTR}, -1);
  auto k_BHSE = k_BHTE, v_BHSF = v_BTHF.transpose(1, 2);
  if (ctx.cache) {
    auto all = ctx.cache->append({k_BHTE.transpose(1, 2), v_BTHF});
    k_BHSE = all[0].transpose(1, 2);
    v_BHSF = all[1].transpose(1, 2);
  }
  const int64_t s = k_BHSE.size(2);
  auto bias_HTS = ctx.position->score_bias(
      o.n_heads, s - t, t, s,
      torch::TensorOptions().dtype(accumulation_dtype(q_BHTE.scalar_type())).device(q_BHTE.device()));
  return inner_attention(q_BHTE, k_BHSE, v_BHSF, softmax_scale(ctx), bias_HTS,
                         ctx.backend == Backend::kAuto ? o.backend : ctx.backend, &ctx.ran);
}

torch::Tensor LatentAttention::absorbed(const torch::Tensor& q_nope_BHTN, const torch::Tensor& q_pe_BHTR,
                                        const torch::Tensor& ckv_BSC, const torch::Tensor& kpe_BSR, AttnContext& ctx) {
  const auto& o = options_;
  const int64_t t = q_nope_BHTN.size(2), s = ckv_BSC.size(1);
  // Everything below accumulates in fp32 (fp64 for fp64 models): an fp16/bf16
  // absorbed query loses the precision the latent contraction needs.
  const auto ct = accumulation_dtype(q_nope_BHTN.scalar_type());
  AutocastOff in_ct;  // autocast would run the einsums below in bf16 again
  auto w_HXC = wkv_b->weight.to(ct).view({o.n_heads, o.nope_dim + o.v_dim, o.kv_rank});
  auto w_uk_HNC = w_HXC.narrow(1, 0, o.nope_dim);
  auto w_uv_HFC = w_HXC.narrow(1, o.nope_dim, o.v_dim);
  auto ckv = ckv_BSC.to(ct);
  // q~ = q_nope W_UK: the query expressed in latent coordinates.
  auto q_lat_BHTC = torch::einsum("bhtn,hnc->bhtc", {q_nope_BHTN.to(ct), w_uk_HNC});
  auto scores_BHTS = torch::einsum("bhtc,bsc->bhts", {q_lat_BHTC, ckv});
  if (o.rope_dim > 0 && o.rope_heads == 1)
    scores_BHTS = scores_BHTS + torch::einsum("bhtr,bsr->bhts", {q_pe_BHTR.to(ct), kpe_BSR.to(ct)});
  if (o.rope_dim > 0 && o.rope_heads > 1) {
    // Query heads g·H/G .. (g+1)·H/G - 1 score against rotary key g.
    const int64_t b = q_pe_BHTR.size(0), g = o.rope_heads;
    auto q_pe_BGITR = q_pe_BHTR.to(ct).reshape({b, g, o.n_heads / g, t, o.rope_dim});
    scores_BHTS = scores_BHTS + torch::einsum("bgitr,bsgr->bgits", {q_pe_BGITR, kpe_BSR.to(ct)}).reshape({b, o.n_heads, t, s});
  }
  scores_BHTS = scores_BHTS * softmax_scale(ctx);
  auto bias_HTS = ctx.position->score_bias(o.n_heads, s - t, t, s, torch::TensorOptions().dtype(ct).device(ckv.device()));
  if (bias_HTS.defined()) scores_BHTS = scores_BHTS + bias_HTS;
  scores_BHTS = scores_BHTS.masked_fill(causal_mask(t, s, ckv.device()).logical_not(),
                                        -std::numeric_limits<double>::infinity());
  auto p_BHTS = torch::softmax(scores_BHTS, -1);
  // The value is the latent itself; W_UV maps the attended latent per head.
  auto o_lat_BHTC = torch::einsum("bhts,bsc->bhtc", {p_BHTS, ckv});
  auto o_BHTF = torch::einsum("bhtc,hfc->bhtf", {o_lat_BHTC, w_uv_HFC});
  ctx.ran = InnerPath::kAbsorbed;
  return o_BHTF.to(q_nope_BHTN.scalar_type());
}

// ---- The model half of mla's registry entry (configuration half: config/attention/mla.cpp)

namespace {

// MLA's small test widths: two rotary pairs, a query bottleneck, d_v != d_n.
ModelConfig small_mla(const ModelConfig& base) {
  auto c = with_kind(base, "mla");
  c.attention.set("q_rank", 16).set("kv_rank", 12).set("nope_dim", 8).set("rope_dim", 4).set("v_dim", 6);
  return c;
}

}  // namespace

AttentionVariant mla_variant() {
  AttentionVariant v;
  v.kind = "mla";
  v.make = [](const ModelConfig& c, bool reads_shared) -> AttentionPtr {
    auto o = LatentOptions::from(c);
    o.reads_shared = reads_shared;
    return std::make_shared<LatentAttention>(o);
  };
  v.layout = [](const ModelConfig& c) { return LatentAttention::layout(LatentOptions::from(c)); };
  v.reader_layout = [](const ModelConfig& c) {
    auto o = LatentOptions::from(c);
    o.reads_shared = true;
    return LatentAttention::layout(o);
  };
  v.params = [](const ModelConfig& c) { return LatentOptions::from(c).params(); };
  v.state_params = [](const ModelConfig& c) {
    const auto o = LatentOptions::from(c);
    return o.d_model * (o.kv_rank + o.rope_heads * o.rope_dim) + (o.kv_norm ? o.kv_rank : 0);  // wkv_a, kv_norm
  };
  v.cache_elements = [](const ModelConfig& c) {
    // DeepSeek-V2 Table 1: (d_c + d_R) absorbed; 2 n_h d_h when the keys and values are cached expanded.
    const auto o = LatentOptions::from(c);
    // With G rotary keys (MHA2MLA: one per head) the absorbed cache holds d_c + G·d_R.
    return o.decode == DecodeMode::kAbsorbed ? o.kv_rank + o.rope_heads * o.rope_dim
                                             : o.n_heads * (o.nope_dim + o.rope_dim + o.v_dim);
  };
  v.head_dims = [](const ModelConfig& c) {
    const auto o = LatentOptions::widths(c);
    return HeadDims{o.qk_dim(), o.v_dim};
  };
  v.kv_rows = [](const ModelConfig& shape) {
    auto c = with_kind(shape, "mla");
    if (c.attention.word("rope_mode") == "coupled") c.attention.set("rope_mode", "decoupled");  // absorbed needs it
    std::vector<VariantConfig> rows;
    for (std::string decode : {"naive", "absorbed"}) {
      c.attention.set("decode", decode);
      rows.push_back({"mla " + decode, c});
    }
    return rows;
  };
  v.test_configs = [](const ModelConfig& base) {
    std::vector<VariantConfig> out;
    for (std::string decode : {"absorbed", "naive"})
      for (std::string rope_mode : {"decoupled", "none", "coupled"})
        for (int64_t q_rank : {16, 0}) {
          if (rope_mode == "coupled" && decode == "absorbed") continue;  // refused (test_attention_mla)
          auto c = small_mla(base);
          c.attention.set("decode", decode).set("rope_mode", rope_mode).set("q_rank", q_rank);
          out.push_back({fmt::format("mla/{}/{}/q{}", decode, rope_mode, q_rank), c});
        }
    for (std::string decode : {"absorbed", "naive"}) {
      // Two rotary keys, each shared by two query heads (a converted GQA).
      auto grouped = small_mla(base);
      grouped.attention.set("decode", decode).set("rope_heads", 2);
      out.push_back({"mla/" + decode + "/rope_heads2", grouped});
      // MHA2MLA's shape: a rotary key per head carrying the pairs position.dims
      // keeps of the head dim (here 2 of 4, the fastest), no latent norm.
      auto converted = small_mla(base);
      const int64_t e = base.resolved_head_dim();
      converted.attention.set("decode", decode).set("q_rank", 0).set("rope_heads", base.n_heads);
      converted.attention.set("rope_dim", e / 2).set("nope_dim", e / 2).set("rope_spectrum", e).set("kv_norm", "none");
      converted.position.dims = "high";
      converted.position.fraction = 0.5;
      out.push_back({"mla/" + decode + "/mha2mla", converted});
    }
    return out;
  };
  return v;
}

}  // namespace attnlab::model
