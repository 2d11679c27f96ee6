// Grouped Latent Attention (GLA; Zadouri, Strauss, Dao, "Hardware-Efficient
// Attention for Fast Decoding", 2025; reference: Dao-AILab/
// grouped-latent-attention, modeling_llama_GLA.py). The model half of gla's
// registry entry (configuration half: config/attention/gla.cpp).
//
// MLA with its latent split into L latent heads of width C: latent head g is
// normalised on its own (its own RMSNorm gain) and up-projected only into the
// keys and values of query heads g·H/L .. (g+1)·H/L - 1. Like MLA there is one
// decoupled rotary key of d_r shared by all heads. Decode paths: naive caches
// the up-projected k[H, d_n + d_r] and v[H, d_v]; absorbed caches the latents
// [L, C] and the rotary key [d_r], folds each head's W_UK into its query and
// applies its W_UV after attending over its own latent. Cache (absorbed):
// L·C + d_r per token per layer. Bias-free (the reference's projections carry
// biases the paper's equations do not).
#include <fmt/format.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "core/error.h"
#include "model/attention/inner.h"
#include "model/attention/registry.h"
#include "model/layers.h"
#include "runtime/autocast.h"

namespace attnlab::model {

namespace {

struct GlaOptions {
  int64_t d_model = 0;
  int64_t n_heads = 0;        // H
  int64_t latent_heads = 0;   // L, divides H
  int64_t q_rank = 0;         // d_q; 0 = plain query projection
  int64_t kv_rank = 0;        // C, per latent head
  int64_t nope_dim = 0;       // d_n
  int64_t rope_dim = 0;       // d_r
  int64_t v_dim = 0;          // d_v
  DecodeMode decode = DecodeMode::kAbsorbed;
  Backend backend = Backend::kAuto;
  bool reads_shared = false;  // model.kv_share: no wkv_a, kv_norm; the latents and rotary key are the group's

  static GlaOptions from(const ModelConfig& c) {
    const auto& a = c.attention;
    const int64_t e = c.resolved_head_dim();
    auto or_default = [&](const char* key, int64_t fallback) { return a.integer(key) > 0 ? a.integer(key) : fallback; };
    GlaOptions o;
    o.d_model = c.d_model;
    o.n_heads = c.n_heads;
    o.latent_heads = or_default("n_latent_heads", 2);
    o.q_rank = a.integer("q_rank");
    o.kv_rank = or_default("kv_rank", 2 * e);
    o.nope_dim = or_default("nope_dim", e);
    o.rope_dim = or_default("rope_dim", e / 2);
    o.v_dim = or_default("v_dim", e);
    o.decode = parse_decode(a.word("decode"));
    o.backend = parse_backend(a.backend);
    if (o.n_heads % o.latent_heads != 0 || o.rope_dim % 2 != 0)
      throw Error(fmt::format("gla: invalid shape H={} L={} d_r={} (the config rules refuse it)", o.n_heads,
                              o.latent_heads, o.rope_dim));
    return o;
  }
  int64_t group() const { return n_heads / latent_heads; }  // query heads per latent head
  int64_t qk_dim() const { return nope_dim + rope_dim; }
  CacheLayout layout() const {
    if (decode == DecodeMode::kNaive) return CacheLayout{{{"k", {n_heads, qk_dim()}}, {"v", {n_heads, v_dim}}}};
    if (reads_shared) return CacheLayout{};  // the absorbed cache is the shared state
    return CacheLayout{{{"latent", {latent_heads, kv_rank}}, {"krope", {rope_dim}}}};
  }
  int64_t params() const {
    const int64_t q = q_rank > 0 ? d_model * q_rank + q_rank + q_rank * n_heads * qk_dim() : d_model * n_heads * qk_dim();
    return q + d_model * (latent_heads * kv_rank + rope_dim) + latent_heads * kv_rank +
           kv_rank * n_heads * (nope_dim + v_dim) + n_heads * v_dim * d_model;
  }
};

class GroupedLatentAttention : public Attention {
 public:
  explicit GroupedLatentAttention(const GlaOptions& options) : Attention(options.reads_shared), o_(options) {
    auto linear = [](int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(false)); };
    if (o_.q_rank > 0) {
      wq_a = register_module("wq_a", linear(o_.d_model, o_.q_rank));
      q_norm = register_module("q_norm", Norm("rms", o_.q_rank));
      wq_b = register_module("wq_b", linear(o_.q_rank, o_.n_heads * o_.qk_dim()));
    } else {
      wq = register_module("wq", linear(o_.d_model, o_.n_heads * o_.qk_dim()));
    }
    if (!o_.reads_shared) {
      wkv_a = register_module("wkv_a", linear(o_.d_model, o_.latent_heads * o_.kv_rank + o_.rope_dim));
      // One RMSNorm gain per latent head, stored concatenated: kv_norm.weight [L·C].
      kv_norm = register_module("kv_norm", std::make_shared<torch::nn::Module>());
      kv_norm_gain = kv_norm->register_parameter("weight", torch::ones({o_.latent_heads * o_.kv_rank}));
    }
    // Rows: latent head g, then its G heads, then [d_n key, d_v value]; each block reads only its latent.
    wkv_b = register_module("wkv_b", linear(o_.kv_rank, o_.n_heads * (o_.nope_dim + o_.v_dim)));
    wo = register_module("wo", linear(o_.n_heads * o_.v_dim, o_.d_model));
  }

  torch::Tensor forward(const torch::Tensor& x_BTD, AttnContext& ctx) override {
    const int64_t b = x_BTD.size(0), t = x_BTD.size(1);
    auto q = o_.q_rank > 0 ? wq_b(q_norm(wq_a(x_BTD))) : wq(x_BTD);
    auto q_BHTE = q.view({b, t, o_.n_heads, o_.qk_dim()}).transpose(1, 2);
    auto q_nope_BHTN = q_BHTE.narrow(-1, 0, o_.nope_dim);
    auto q_pe_BHTR = ctx.position->rotate(q_BHTE.narrow(-1, o_.nope_dim, o_.rope_dim), ctx.start);
    // The state: the normalised latent heads and the rotated rotary key.
    const auto fresh = fresh_state(ctx, [&] {
      auto kv_BTX = wkv_a(x_BTD);
      return std::vector<torch::Tensor>{
          normalise(kv_BTX.narrow(-1, 0, o_.latent_heads * o_.kv_rank).view({b, t, o_.latent_heads, o_.kv_rank})),
          ctx.position->rotate(kv_BTX.narrow(-1, o_.latent_heads * o_.kv_rank, o_.rope_dim), ctx.start)};
    });
    const auto &latent_BTLC = fresh[0], &kpe_BTR = fresh[1];

    torch::Tensor o_BHTF;
    if (o_.decode == DecodeMode::kNaive) {
      o_BHTF = naive(q_nope_BHTN, q_pe_BHTR, latent_BTLC, kpe_BTR, ctx);
    } else if (ctx.start == 0) {
      // Prefill (and training) with no past tokens: the naive math, the latents cached.
      all_state(ctx, fresh);
      AttnContext local = ctx;
      local.cache = nullptr;
      o_BHTF = naive(q_nope_BHTN, q_pe_BHTR, latent_BTLC, kpe_BTR, local);
      ctx.ran = local.ran;
    } else {
      auto all = all_state(ctx, fresh);
      o_BHTF = absorbed(q_nope_BHTN, q_pe_BHTR, all[0], all[1], ctx);
    }
    return wo(o_BHTF.transpose(1, 2).reshape({b, t, o_.n_heads * o_.v_dim}));
  }

  CacheLayout cache_layout() const override { return o_.layout(); }
  void set_decode(DecodeMode mode) override { o_.decode = mode; }
  DecodeMode decode() const override { return o_.decode; }
  torch::Tensor output_weight() override { return wo->weight; }

  torch::nn::Linear wq{nullptr}, wq_a{nullptr}, wq_b{nullptr}, wkv_a{nullptr}, wkv_b{nullptr}, wo{nullptr};
  Norm q_norm{nullptr};
  std::shared_ptr<torch::nn::Module> kv_norm;
  torch::Tensor kv_norm_gain;

 private:
  // RMSNorm of each latent head over its own C dims, with its own gain, in
  // the accumulation dtype (as model::Norm), cast back.
  torch::Tensor normalise(const torch::Tensor& latent_BTLC) const {
    const auto ct = accumulation_dtype(latent_BTLC.scalar_type());
    auto xf = latent_BTLC.to(ct);
    auto y = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + 1e-6) * kv_norm_gain.to(ct).view({o_.latent_heads, o_.kv_rank});
    return y.to(latent_BTLC.scalar_type());
  }

  double softmax_scale(const AttnContext& ctx) const {
    return ctx.position->softmax_scale_factor() / std::sqrt(static_cast<double>(o_.qk_dim()));
  }

  // Up-projects every latent into its heads' keys and values, then plain attention.
  torch::Tensor naive(const torch::Tensor& q_nope_BHTN, const torch::Tensor& q_pe_BHTR, const torch::Tensor& latent_BTLC,
                      const torch::Tensor& kpe_BTR, AttnContext& ctx) {
    const int64_t b = latent_BTLC.size(0), t = latent_BTLC.size(1), x = o_.nope_dim + o_.v_dim;
    auto w_LGXC = wkv_b->weight.view({o_.latent_heads, o_.group(), x, o_.kv_rank});
    auto kv_BTHX = torch::einsum("btlc,lgxc->btlgx", {latent_BTLC, w_LGXC}).reshape({b, t, o_.n_heads, x});
    auto k_nope_BHTN = kv_BTHX.narrow(-1, 0, o_.nope_dim).transpose(1, 2);
    auto v_BTHF = kv_BTHX.narrow(-1, o_.nope_dim, o_.v_dim);
    auto kpe_BHTR = kpe_BTR.unsqueeze(1).expand({b, o_.n_heads, t, o_.rope_dim});
    auto q_BHTE = torch::cat({q_nope_BHTN, q_pe_BHTR}, -1);
    auto k_BHTE = torch::cat({k_nope_BHTN, kpe_BHTR}, -1);
    auto k_BHSE = k_BHTE, v_BHSF = v_BTHF.transpose(1, 2);
    if (ctx.cache) {
      auto all = ctx.cache->append({k_BHTE.transpose(1, 2), v_BTHF});
      k_BHSE = all[0].transpose(1, 2);
      v_BHSF = all[1].transpose(1, 2);
    }
    const int64_t s = k_BHSE.size(2);
    auto bias_HTS = ctx.position->score_bias(
        o_.n_heads, s - t, t, s,
        torch::TensorOptions().dtype(accumulation_dtype(q_BHTE.scalar_type())).device(q_BHTE.device()));
    return inner_attention(q_BHTE, k_BHSE, v_BHSF, softmax_scale(ctx), bias_HTS,
                           ctx.backend == Backend::kAuto ? o_.backend : ctx.backend, &ctx.ran);
  }

  // Attends in latent space, per latent head: head h (of group g) scores
  // q_nope·W_UK_h against latent g and maps the attended latent with W_UV_h.
  torch::Tensor absorbed(const torch::Tensor& q_nope_BHTN, const torch::Tensor& q_pe_BHTR,
                         const torch::Tensor& latent_BSLC, const torch::Tensor& kpe_BSR, AttnContext& ctx) {
    const int64_t b = q_nope_BHTN.size(0), t = q_nope_BHTN.size(2), s = latent_BSLC.size(1);
    const int64_t l = o_.latent_heads, g = o_.group();
    const auto ct = accumulation_dtype(q_nope_BHTN.scalar_type());
    AutocastOff in_ct;  // autocast would run the einsums below in bf16 again
    auto w_LGXC = wkv_b->weight.to(ct).view({l, g, o_.nope_dim + o_.v_dim, o_.kv_rank});
    auto w_uk_LGNC = w_LGXC.narrow(2, 0, o_.nope_dim);
    auto w_uv_LGFC = w_LGXC.narrow(2, o_.nope_dim, o_.v_dim);
    auto latent = latent_BSLC.to(ct);
    auto q_nope_BLGTN = q_nope_BHTN.to(ct).view({b, l, g, t, o_.nope_dim});
    auto q_lat_BLGTC = torch::einsum("blgtn,lgnc->blgtc", {q_nope_BLGTN, w_uk_LGNC});
    auto scores = torch::einsum("blgtc,bslc->blgts", {q_lat_BLGTC, latent});
    auto q_pe_BLGTR = q_pe_BHTR.to(ct).view({b, l, g, t, o_.rope_dim});
    scores = scores + torch::einsum("blgtr,bsr->blgts", {q_pe_BLGTR, kpe_BSR.to(ct)});
    auto scores_BHTS = scores.reshape({b, o_.n_heads, t, s}) * softmax_scale(ctx);
    auto bias_HTS = ctx.position->score_bias(o_.n_heads, s - t, t, s, torch::TensorOptions().dtype(ct).device(latent.device()));
    if (bias_HTS.defined()) scores_BHTS = scores_BHTS + bias_HTS;
    scores_BHTS = scores_BHTS.masked_fill(causal_mask(t, s, latent.device()).logical_not(),
                                          -std::numeric_limits<double>::infinity());
    auto p_BLGTS = torch::softmax(scores_BHTS, -1).view({b, l, g, t, s});
    auto o_lat_BLGTC = torch::einsum("blgts,bslc->blgtc", {p_BLGTS, latent});
    auto o_BLGTF = torch::einsum("blgtc,lgfc->blgtf", {o_lat_BLGTC, w_uv_LGFC});
    ctx.ran = InnerPath::kAbsorbed;
    return o_BLGTF.reshape({b, o_.n_heads, t, o_.v_dim}).to(q_nope_BHTN.scalar_type());
  }

  GlaOptions o_;
};

}  // namespace

AttentionVariant gla_variant() {
  AttentionVariant v;
  v.kind = "gla";
  v.make = [](const ModelConfig& c, bool reads_shared) -> AttentionPtr {
    auto o = GlaOptions::from(c);
    o.reads_shared = reads_shared;
    return std::make_shared<GroupedLatentAttention>(o);
  };
  v.layout = [](const ModelConfig& c) { return GlaOptions::from(c).layout(); };
  v.reader_layout = [](const ModelConfig& c) {
    auto o = GlaOptions::from(c);
    o.reads_shared = true;
    return o.layout();
  };
  v.params = [](const ModelConfig& c) { return GlaOptions::from(c).params(); };
  v.state_params = [](const ModelConfig& c) {
    const auto o = GlaOptions::from(c);
    return o.d_model * (o.latent_heads * o.kv_rank + o.rope_dim) + o.latent_heads * o.kv_rank;  // wkv_a, kv_norm
  };
  v.cache_elements = [](const ModelConfig& c) {
    // The paper's h_c latent heads of d_c plus the rotary key (absorbed), or full keys and values (naive).
    const auto o = GlaOptions::from(c);
    return o.decode == DecodeMode::kAbsorbed ? o.latent_heads * o.kv_rank + o.rope_dim
                                             : o.n_heads * (o.nope_dim + o.rope_dim + o.v_dim);
  };
  v.head_dims = [](const ModelConfig& c) {
    const auto o = GlaOptions::from(c);
    return HeadDims{o.qk_dim(), o.v_dim};
  };
  v.kv_rows = [](const ModelConfig& shape) {
    auto c = with_kind(shape, "gla");
    c.attention.set("decode", "absorbed");
    // At another variant's shape: the paper's GLA-2, latent heads of 2E (together MLA's 4E).
    if (shape.attention.kind != "gla") c.attention.set("n_latent_heads", 0).set("kv_rank", 0);
    const int64_t l = GlaOptions::from(c).latent_heads;
    return std::vector<VariantConfig>{{fmt::format("gla-{} absorbed", l), c}};
  };
  v.test_configs = [](const ModelConfig& base) {
    std::vector<VariantConfig> out;
    for (std::string decode : {"absorbed", "naive"})
      for (int64_t q_rank : {16, 0}) {
        auto c = with_kind(base, "gla");
        // Two latent heads of 12 over four query heads, two rotary pairs, d_v != d_n.
        c.attention.set("n_latent_heads", 2).set("kv_rank", 12).set("nope_dim", 8).set("rope_dim", 4).set("v_dim", 6);
        c.attention.set("q_rank", q_rank).set("decode", decode);
        out.push_back({fmt::format("gla/{}/q{}", decode, q_rank), c});
      }
    return out;
  };
  return v;
}

}  // namespace attnlab::model
