// Grouped-query attention (see grouped.h).
#include "model/attention/grouped.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "model/attention/inner.h"
#include "model/attention/registry.h"

namespace attnlab::model {

GroupedOptions GroupedOptions::from(const ModelConfig& config) {
  GroupedOptions o;
  o.d_model = config.d_model;
  o.n_heads = config.n_heads;
  o.head_dim = config.resolved_head_dim();
  const auto& a = config.attention;
  const int64_t k = a.integer("n_kv_heads");
  o.n_kv_heads = k > 0 ? k : (a.kind == "mqa" ? 1 : config.n_heads);
  if (a.kind == "mha" && o.n_kv_heads != config.n_heads)
    throw_user_error("attention.n_kv_heads", "",
                     fmt::format("mha uses one kv head per query head ({}), got {}; use kind=gqa", config.n_heads, o.n_kv_heads));
  if (a.kind == "mqa" && o.n_kv_heads != 1)
    throw_user_error("attention.n_kv_heads", "", fmt::format("mqa uses one kv head, got {}; use kind=gqa", o.n_kv_heads));
  if (o.n_heads % o.n_kv_heads != 0)
    throw_user_error("attention.n_kv_heads", "",
                     fmt::format("model.n_heads={} is not a multiple of n_kv_heads={}", o.n_heads, o.n_kv_heads));
  o.backend = parse_backend(a.backend);
  return o;
}

GroupedAttention::GroupedAttention(const GroupedOptions& options) : Attention(options.reads_shared), options_(options) {
  const auto& o = options_;
  auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
  wq = register_module("wq", linear(o.d_model, o.n_heads * o.head_dim));
  if (!o.reads_shared) {
    wk = register_module("wk", linear(o.d_model, o.n_kv_heads * o.head_dim));
    wv = register_module("wv", linear(o.d_model, o.n_kv_heads * o.head_dim));
  }
  wo = register_module("wo", linear(o.n_heads * o.head_dim, o.d_model));
}

CacheLayout GroupedAttention::layout(const GroupedOptions& o) {
  return CacheLayout{{{"k", {o.n_kv_heads, o.head_dim}}, {"v", {o.n_kv_heads, o.head_dim}}}};
}

torch::Tensor GroupedAttention::forward(const torch::Tensor& x_BTD, AttnContext& ctx) {
  const auto& o = options_;
  const int64_t b = x_BTD.size(0), t = x_BTD.size(1);
  auto q_BHTE = wq(x_BTD).view({b, t, o.n_heads, o.head_dim}).transpose(1, 2);
  q_BHTE = ctx.position->rotate(q_BHTE, ctx.start);
  // The state: keys rotated (RoPE of a past token never changes) and values, [B, T, K, E].
  const auto fresh = fresh_state(ctx, [&] {
    auto k_BKTE = ctx.position->rotate(wk(x_BTD).view({b, t, o.n_kv_heads, o.head_dim}).transpose(1, 2), ctx.start);
    return std::vector<torch::Tensor>{k_BKTE.transpose(1, 2), wv(x_BTD).view({b, t, o.n_kv_heads, o.head_dim})};
  });
  const auto all = all_state(ctx, fresh);
  auto k_BKSE = all[0].transpose(1, 2), v_BKSE = all[1].transpose(1, 2);
  const int64_t s = k_BKSE.size(2);
  const double scale = ctx.position->softmax_scale_factor() / std::sqrt(static_cast<double>(o.head_dim));
  auto bias_HTS = ctx.position->score_bias(o.n_heads, s - t, t, s,
                                           torch::TensorOptions().dtype(accumulation_dtype(x_BTD.scalar_type())).device(x_BTD.device()));
  auto o_BHTE = inner_attention(q_BHTE, k_BKSE, v_BKSE, scale, bias_HTS,
                                ctx.backend == Backend::kAuto ? o.backend : ctx.backend, &ctx.ran);
  return wo(o_BHTE.transpose(1, 2).reshape({b, t, o.n_heads * o.head_dim}));
}

// ---- The registry entries of mha, gqa and mqa --------------------------------

namespace {

// The kv heads a grouped kind implies when attention.n_kv_heads is 0.
int64_t implied_kv_heads(const ModelConfig& c) {
  const int64_t k = c.attention.integer("n_kv_heads");
  return k > 0 ? k : c.attention.kind == "mqa" ? 1 : c.n_heads;
}

AttentionVariant grouped_variant(const std::string& kind) {
  AttentionVariant v;
  v.kind = kind;
  v.make = [](const ModelConfig& c, bool reads_shared) -> AttentionPtr {
    auto o = GroupedOptions::from(c);
    o.reads_shared = reads_shared;
    return std::make_shared<GroupedAttention>(o);
  };
  v.layout = [](const ModelConfig& c) { return GroupedAttention::layout(GroupedOptions::from(c)); };
  v.reader_layout = [](const ModelConfig&) { return CacheLayout{}; };
  v.params = [](const ModelConfig& c) {
    const int64_t d = c.d_model, h = c.n_heads, kv = implied_kv_heads(c), e = c.resolved_head_dim();
    return d * h * e + 2 * d * kv * e + h * e * d;  // wq, wk and wv, wo
  };
  v.state_params = [](const ModelConfig& c) { return 2 * c.d_model * implied_kv_heads(c) * c.resolved_head_dim(); };
  v.cache_elements = [](const ModelConfig& c) { return 2 * implied_kv_heads(c) * c.resolved_head_dim(); };
  v.head_dims = [](const ModelConfig& c) { return HeadDims{c.resolved_head_dim(), c.resolved_head_dim()}; };
  v.kv_rows = [kind](const ModelConfig& shape) {
    auto c = with_kind(shape, kind);
    if (kind != "gqa") {
      c.attention.set("n_kv_heads", kind == "mqa" ? 1 : shape.n_heads);
      return std::vector<VariantConfig>{{kind, c}};
    }
    // The config's own K when it is a gqa config, else a common choice: 8, or H/2 for few heads.
    const int64_t k = shape.attention.kind == "gqa" && shape.attention.integer("n_kv_heads") > 0
                          ? shape.attention.integer("n_kv_heads")
                      : (shape.n_heads % 8 == 0 && shape.n_heads > 8) ? 8
                                                                       : std::max<int64_t>(1, shape.n_heads / 2);
    c.attention.set("n_kv_heads", k);
    return std::vector<VariantConfig>{{fmt::format("gqa (K={})", k), c}};
  };
  v.test_configs = [kind](const ModelConfig& base) {
    auto c = with_kind(base, kind);
    c.attention.set("n_kv_heads", kind == "gqa" ? std::max<int64_t>(1, base.n_heads / 2) : 0);
    return std::vector<VariantConfig>{{kind, c}};
  };
  return v;
}

}  // namespace

AttentionVariant mha_variant() { return grouped_variant("mha"); }
AttentionVariant gqa_variant() { return grouped_variant("gqa"); }
AttentionVariant mqa_variant() { return grouped_variant("mqa"); }

}  // namespace attnlab::model
