// Tensor Product Attention (TPA; Zhang et al., "Tensor Product Attention Is
// All You Need", 2025, §3; reference: tensorgi/TPA, model/T6.py, decode in
// decode/flashtpa_decode_torch.py). The model half of tpa's registry entry
// (configuration half: config/attention/tpa.cpp).
//
// Per token, q[h, e] = (1/R_q) Σ_r A_q[h, r] B_q[r, e], and likewise k with
// rank R_K and v with R_V: A from wa_* (head-major, h·R + r, as T6 views it),
// B from wb_* (r·E + e). RoPE rotates B_q and B_k over the head dim before
// the product. Scores are q·k / sqrt(E). Decode paths: naive caches k and v
// formed from the factors ([H, E] each); absorbed caches the factors
// A_K[H, R_K], B_K[R_K, E] (rotated), A_V[H, R_V], B_V[R_V, E], the paper's
// (R_K + R_V)(H + E) per token per layer, and scores from them without
// forming a key or value.
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "model/attention/inner.h"
#include "model/attention/registry.h"
#include "runtime/autocast.h"

namespace attnlab::model {

namespace {

struct TpaOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;   // H
  int64_t head_dim = 0;  // E
  int64_t q_rank = 0;    // R_q
  int64_t k_rank = 0;    // R_K
  int64_t v_rank = 0;    // R_V
  DecodeMode decode = DecodeMode::kAbsorbed;
  Backend backend = Backend::kAuto;
  bool reads_shared = false;  // model.kv_share: no wa_k, wb_k, wa_v, wb_v; the factors are the group's

  static TpaOptions from(const ModelConfig& c) {
    const auto& a = c.attention;
    auto or_default = [&](const char* key, int64_t fallback) { return a.integer(key) > 0 ? a.integer(key) : fallback; };
    TpaOptions o;
    o.d_model = c.d_model;
    o.n_heads = c.n_heads;
    o.head_dim = c.resolved_head_dim();
    o.q_rank = or_default("q_rank", 6);
    o.k_rank = or_default("k_rank", 2);
    o.v_rank = or_default("v_rank", 2);
    o.decode = parse_decode(a.word("decode"));
    o.backend = parse_backend(a.backend);
    return o;
  }
  CacheLayout layout() const {
    if (decode == DecodeMode::kNaive) return CacheLayout{{{"k", {n_heads, head_dim}}, {"v", {n_heads, head_dim}}}};
    if (reads_shared) return CacheLayout{};  // the factors are the shared state
    return CacheLayout{{{"a_k", {n_heads, k_rank}}, {"b_k", {k_rank, head_dim}}, {"a_v", {n_heads, v_rank}},
                        {"b_v", {v_rank, head_dim}}}};
  }
  int64_t params() const {
    return d_model * (q_rank + k_rank + v_rank) * (n_heads + head_dim) + n_heads * head_dim * d_model;
  }
};

class TensorProductAttention : public Attention {
 public:
  explicit TensorProductAttention(const TpaOptions& options) : Attention(options.reads_shared), o_(options) {
    auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    const int64_t d = o_.d_model, h = o_.n_heads, e = o_.head_dim;
    wa_q = register_module("wa_q", linear(d, h * o_.q_rank));
    wb_q = register_module("wb_q", linear(d, o_.q_rank * e));
    if (!o_.reads_shared) {
      wa_k = register_module("wa_k", linear(d, h * o_.k_rank));
      wb_k = register_module("wb_k", linear(d, o_.k_rank * e));
      wa_v = register_module("wa_v", linear(d, h * o_.v_rank));
      wb_v = register_module("wb_v", linear(d, o_.v_rank * e));
    }
    wo = register_module("wo", linear(h * e, d));
  }

  torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx) override {
    const int64_t b = x_BTD.size(0), t = x_BTD.size(1), h = o_.n_heads, e = o_.head_dim;
    auto a_q_BTHR = wa_q(x_BTD).view({b, t, h, o_.q_rank});
    auto b_q_BTRE = rotated(wb_q(x_BTD).view({b, t, o_.q_rank, e}), ctx);
    auto q_BHTE = product(a_q_BTHR, b_q_BTRE).transpose(1, 2);
    // The state: the key factors (B_K rotated) and the value factors.
    const auto fresh = fresh_state(ctx, [&] {
      return std::vector<torch::Tensor>{wa_k(x_BTD).view({b, t, h, o_.k_rank}),
                                        rotated(wb_k(x_BTD).view({b, t, o_.k_rank, e}), ctx),
                                        wa_v(x_BTD).view({b, t, h, o_.v_rank}), wb_v(x_BTD).view({b, t, o_.v_rank, e})};
    });

    torch::Tensor o_BHTE;
    if (o_.decode == DecodeMode::kNaive || ctx.start == 0) {
      // Training, prefill and the naive path: form k and v, attend with the inner kernel.
      auto k_BTHE = product(fresh[0], fresh[1]), v_BTHE = product(fresh[2], fresh[3]);
      torch::Tensor k_BHSE = k_BTHE.transpose(1, 2), v_BHSE = v_BTHE.transpose(1, 2);
      if (o_.decode == DecodeMode::kNaive) {
        if (ctx.cache) {
          auto all = ctx.cache->append({k_BTHE, v_BTHE});
          k_BHSE = all[0].transpose(1, 2);
          v_BHSE = all[1].transpose(1, 2);
        }
      } else {
        all_state(ctx, fresh);  // the factors are cached; this chunk attends as formed
      }
      const int64_t s = k_BHSE.size(2);
      auto bias_HTS = ctx.position->score_bias(
          h, s - t, t, s, torch::TensorOptions().dtype(accumulation_dtype(x_BTD.scalar_type())).device(x_BTD.device()));
      o_BHTE = inner_attention(q_BHTE, k_BHSE, v_BHSE, softmax_scale(ctx), bias_HTS,
                               ctx.backend == Backend::kAuto ? o_.backend : ctx.backend, &ctx.ran);
    } else {
      auto all = all_state(ctx, fresh);
      o_BHTE = from_factors(q_BHTE, all[0], all[1], all[2], all[3], ctx);
    }
    return wo(o_BHTE.transpose(1, 2).reshape({b, t, h * e}));
  }

  CacheLayout cache_layout() const override { return o_.layout(); }
  void set_decode(DecodeMode mode) override { o_.decode = mode; }
  DecodeMode decode() const override { return o_.decode; }
  torch::Tensor output_weight() override { return wo->weight; }

  torch::nn::Linear wa_q{nullptr}, wb_q{nullptr}, wa_k{nullptr}, wb_k{nullptr}, wa_v{nullptr}, wb_v{nullptr},
      wo{nullptr};

 private:
  // RoPE over the head dim of a B factor [B, T, R, E] (the encoding wants tokens at dim -2).
  static torch::Tensor rotated(const torch::Tensor& b_BTRE, const AttnContext& ctx) {
    return ctx.position->rotate(b_BTRE.transpose(1, 2), ctx.start).transpose(1, 2);
  }
  // (1/R) Σ_r A[h, r] B[r, e]: [B, T, H, E].
  static torch::Tensor product(const torch::Tensor& a_BTHR, const torch::Tensor& b_BTRE) {
    return torch::matmul(a_BTHR, b_BTRE) / static_cast<double>(a_BTHR.size(-1));
  }
  double softmax_scale(const AttnContext& ctx) const {
    return ctx.position->softmax_scale_factor() / std::sqrt(static_cast<double>(o_.head_dim));
  }

  // Attention over cached factors, no key or value formed:
  // q·k_s = (1/R_K) Σ_r A_K[s, h, r] (q_h · B_K[s, r]), o_h = (1/R_V) Σ_s p_s Σ_r A_V[s, h, r] B_V[s, r].
  torch::Tensor from_factors(const torch::Tensor& q_BHTE, const torch::Tensor& a_k_BSHR, const torch::Tensor& b_k_BSRE,
                             const torch::Tensor& a_v_BSHR, const torch::Tensor& b_v_BSRE, AttnContext& ctx) {
    const int64_t t = q_BHTE.size(2), s = a_k_BSHR.size(1);
    const auto ct = accumulation_dtype(q_BHTE.scalar_type());
    AutocastOff in_ct;
    auto q = q_BHTE.to(ct);
    auto qb_BHTSR = torch::einsum("bhte,bsre->bhtsr", {q, b_k_BSRE.to(ct)});
    auto scores_BHTS = torch::einsum("bhtsr,bshr->bhts", {qb_BHTSR, a_k_BSHR.to(ct)}) *
                       (softmax_scale(ctx) / static_cast<double>(o_.k_rank));
    auto bias_HTS = ctx.position->score_bias(o_.n_heads, s - t, t, s, torch::TensorOptions().dtype(ct).device(q.device()));
    if (bias_HTS.defined()) scores_BHTS = scores_BHTS + bias_HTS;
    scores_BHTS = scores_BHTS.masked_fill(causal_mask(t, s, q.device()).logical_not(),
                                          -std::numeric_limits<double>::infinity());
    auto p_BHTS = torch::softmax(scores_BHTS, -1);
    auto pa_BHTSR = p_BHTS.unsqueeze(-1) * a_v_BSHR.to(ct).permute({0, 2, 1, 3}).unsqueeze(2);
    auto o_BHTE = torch::einsum("bhtsr,bsre->bhte", {pa_BHTSR, b_v_BSRE.to(ct)}) / static_cast<double>(o_.v_rank);
    ctx.ran = InnerPath::kAbsorbed;
    return o_BHTE.to(q_BHTE.scalar_type());
  }

  TpaOptions o_;
};

}  // namespace

AttentionVariant tpa_variant() {
  AttentionVariant v;
  v.kind = "tpa";
  v.make = [](const ModelConfig& c, bool reads_shared) -> AttentionPtr {
    auto o = TpaOptions::from(c);
    o.reads_shared = reads_shared;
    return std::make_shared<TensorProductAttention>(o);
  };
  v.layout = [](const ModelConfig& c) { return TpaOptions::from(c).layout(); };
  v.reader_layout = [](const ModelConfig& c) {
    auto o = TpaOptions::from(c);
    o.reads_shared = true;
    return o.layout();
  };
  v.params = [](const ModelConfig& c) { return TpaOptions::from(c).params(); };
  v.state_params = [](const ModelConfig& c) {
    const auto o = TpaOptions::from(c);
    return o.d_model * (o.k_rank + o.v_rank) * (o.n_heads + o.head_dim);  // wa_k, wb_k, wa_v, wb_v
  };
  v.cache_elements = [](const ModelConfig& c) {
    // The paper's (R_K + R_V)(h + d_h) (§3.3), or 2 h d_h when k and v are cached formed.
    const auto o = TpaOptions::from(c);
    return o.decode == DecodeMode::kAbsorbed ? (o.k_rank + o.v_rank) * (o.n_heads + o.head_dim)
                                             : 2 * o.n_heads * o.head_dim;
  };
  v.head_dims = [](const ModelConfig& c) { return HeadDims{c.resolved_head_dim(), c.resolved_head_dim()}; };
  v.kv_rows = [](const ModelConfig& shape) {
    auto c = with_kind(shape, "tpa");
    c.attention.set("decode", "absorbed");
    if (shape.attention.kind != "tpa") c.attention.set("q_rank", 0).set("k_rank", 0).set("v_rank", 0);  // T6's ranks
    const auto o = TpaOptions::from(c);
    return std::vector<VariantConfig>{{fmt::format("tpa (R={},{})", o.k_rank, o.v_rank), c}};
  };
  v.test_configs = [](const ModelConfig& base) {
    std::vector<VariantConfig> out;
    for (std::string decode : {"absorbed", "naive"}) {
      auto c = with_kind(base, "tpa");
      c.attention.set("q_rank", 3).set("k_rank", 2).set("v_rank", 3).set("decode", decode);
      out.push_back({"tpa/" + decode, c});
    }
    return out;
  };
  return v;
}

}  // namespace attnlab::model
