// Grouped-Tied Attention (GTA; Zadouri, Strauss, Dao, "Hardware-Efficient
// Attention for Fast Decoding", 2025, §3.3.1; reference: Dao-AILab/
// grouped-latent-attention, modeling_llama_GTA.py). The model half of gta's
// registry entry (configuration half: config/attention/gta.cpp).
//
// Each of K groups projects one tied state kv_g of the head dim E. It is the
// group's value whole, and its key's first E - d_r dims; the key's last d_r
// dims are one rotary key shared by every head. Queries rotate their last d_r
// dims. Per token and layer the cache holds kv[K, E] + krope[d_r], against
// GQA's 2 K E: for d_r = E/2 that is (K + 1/2) E. Bias-free, as the paper's
// equations (the reference's W_rope_k has a bias).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"
#include "model/attention/inner.h"
#include "model/attention/registry.h"

namespace attnlab::model {

namespace {

struct TiedOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;     // H
  int64_t n_kv_heads = 0;  // K, divides H
  int64_t head_dim = 0;    // E
  int64_t rope_dim = 0;    // d_r <= E, even
  Backend backend = Backend::kAuto;
  bool reads_shared = false;  // model.kv_share: no wkv, wk_rope; the tied state and rotary key are the group's

  static TiedOptions from(const ModelConfig& c) {
    TiedOptions o;
    o.d_model = c.d_model;
    o.n_heads = c.n_heads;
    o.n_kv_heads = c.attention.integer("n_kv_heads");
    o.head_dim = c.resolved_head_dim();
    o.rope_dim = c.attention.integer("rope_dim") > 0 ? c.attention.integer("rope_dim") : o.head_dim / 2;
    o.backend = parse_backend(c.attention.backend);
    if (o.n_kv_heads < 1 || o.n_heads % o.n_kv_heads != 0 || o.rope_dim % 2 != 0 || o.rope_dim > o.head_dim)
      throw Error(fmt::format("gta: invalid shape H={} K={} E={} d_r={} (the config rules refuse it)", o.n_heads,
                              o.n_kv_heads, o.head_dim, o.rope_dim));
    return o;
  }
  CacheLayout layout() const {
    if (reads_shared) return CacheLayout{};  // the cache is the shared state
    return CacheLayout{{{"kv", {n_kv_heads, head_dim}}, {"krope", {rope_dim}}}};
  }
  int64_t params() const {
    return d_model * n_heads * head_dim + d_model * n_kv_heads * head_dim + d_model * rope_dim +
           n_heads * head_dim * d_model;  // wq, wkv, wk_rope, wo
  }
};

class TiedAttention : public Attention {
 public:
  explicit TiedAttention(const TiedOptions& options) : Attention(options.reads_shared), o_(options) {
    auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    wq = register_module("wq", linear(o_.d_model, o_.n_heads * o_.head_dim));
    if (!o_.reads_shared) {
      wkv = register_module("wkv", linear(o_.d_model, o_.n_kv_heads * o_.head_dim));
      wk_rope = register_module("wk_rope", linear(o_.d_model, o_.rope_dim));
    }
    wo = register_module("wo", linear(o_.n_heads * o_.head_dim, o_.d_model));
  }

  torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx) override {
    const int64_t b = x_BTD.size(0), t = x_BTD.size(1), e = o_.head_dim, r = o_.rope_dim, n = e - r;
    // Queries: the first E - d_r dims as they are, the last d_r rotated.
    auto q_BHTE = wq(x_BTD).view({b, t, o_.n_heads, e}).transpose(1, 2);
    q_BHTE = torch::cat({q_BHTE.narrow(-1, 0, n), ctx.position->rotate(q_BHTE.narrow(-1, n, r), ctx.start)}, -1);
    // The state: the tied kv heads and the rotary key, cached rotated ([B, T, d_r]: tokens at dim -2).
    const auto fresh = fresh_state(ctx, [&] {
      return std::vector<torch::Tensor>{wkv(x_BTD).view({b, t, o_.n_kv_heads, e}),
                                        ctx.position->rotate(wk_rope(x_BTD), ctx.start)};
    });
    const auto all = all_state(ctx, fresh);
    const auto &kv_BSKE = all[0], &krope_BSR = all[1];
    const int64_t s = kv_BSKE.size(1);
    // Keys: each group's tied state with its last d_r dims replaced by the shared rotary key.
    auto k_BSKE = torch::cat({kv_BSKE.narrow(-1, 0, n), krope_BSR.unsqueeze(2).expand({b, s, o_.n_kv_heads, r})}, -1);
    const double scale = ctx.position->softmax_scale_factor() / std::sqrt(static_cast<double>(e));
    auto bias_HTS = ctx.position->score_bias(
        o_.n_heads, s - t, t, s, torch::TensorOptions().dtype(accumulation_dtype(x_BTD.scalar_type())).device(x_BTD.device()));
    auto o_BHTE = inner_attention(q_BHTE, k_BSKE.transpose(1, 2), kv_BSKE.transpose(1, 2), scale, bias_HTS,
                                  ctx.backend == Backend::kAuto ? o_.backend : ctx.backend, &ctx.ran);
    return wo(o_BHTE.transpose(1, 2).reshape({b, t, o_.n_heads * e}));
  }

  CacheLayout cache_layout() const override { return o_.layout(); }
  torch::Tensor output_weight() override { return wo->weight; }

  torch::nn::Linear wq{nullptr}, wkv{nullptr}, wk_rope{nullptr}, wo{nullptr};

 private:
  TiedOptions o_;
};

// The tied heads `attnlab kv` shows at a shape: the config's own when it is
// gta, else 8 (or H/2 for few heads), as for gqa.
int64_t usual_kv_heads(const ModelConfig& shape) {
  if (shape.attention.kind == "gta" && shape.attention.integer("n_kv_heads") > 0)
    return shape.attention.integer("n_kv_heads");
  return shape.n_heads % 8 == 0 && shape.n_heads > 8 ? 8 : std::max<int64_t>(1, shape.n_heads / 2);
}

}  // namespace

AttentionVariant gta_variant() {
  AttentionVariant v;
  v.kind = "gta";
  v.make = [](const ModelConfig& c, bool reads_shared) -> AttentionPtr {
    auto o = TiedOptions::from(c);
    o.reads_shared = reads_shared;
    return std::make_shared<TiedAttention>(o);
  };
  v.layout = [](const ModelConfig& c) { return TiedOptions::from(c).layout(); };
  v.reader_layout = [](const ModelConfig&) { return CacheLayout{}; };
  v.params = [](const ModelConfig& c) { return TiedOptions::from(c).params(); };
  v.state_params = [](const ModelConfig& c) {
    const auto o = TiedOptions::from(c);
    return o.d_model * (o.n_kv_heads * o.head_dim + o.rope_dim);  // wkv, wk_rope
  };
  v.cache_elements = [](const ModelConfig& c) {
    // The paper's K·d_h tied state plus the shared rotary key (d_h/2 by default).
    const int64_t r = c.attention.integer("rope_dim");
    return c.attention.integer("n_kv_heads") * c.resolved_head_dim() + (r > 0 ? r : c.resolved_head_dim() / 2);
  };
  v.head_dims = [](const ModelConfig& c) { return HeadDims{c.resolved_head_dim(), c.resolved_head_dim()}; };
  v.kv_rows = [](const ModelConfig& shape) {
    auto c = with_kind(shape, "gta");
    const int64_t k = usual_kv_heads(shape);
    c.attention.set("n_kv_heads", k);
    if (shape.attention.kind != "gta") c.attention.set("rope_dim", 0);  // the paper's E/2, not another variant's d_r
    return std::vector<VariantConfig>{{fmt::format("gta (K={})", k), c}};
  };
  v.test_configs = [](const ModelConfig& base) {
    auto c = with_kind(base, "gta");
    c.attention.set("n_kv_heads", std::max<int64_t>(1, base.n_heads / 2)).set("rope_dim", 0);
    return std::vector<VariantConfig>{{"gta", c}};
  };
  return v;
}

}  // namespace attnlab::model
