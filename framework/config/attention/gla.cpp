// Configuration half of gla, Grouped Latent Attention (Zadouri, Strauss, Dao,
// "Hardware-Efficient Attention for Fast Decoding", 2025; model half:
// model/attention/gla.cpp).
#include <fmt/format.h>

#include "config/attention_options.h"
#include "config/rules.h"

namespace attnlab::config {

namespace {

int64_t latent_heads(const ModelConfig& c) {
  const int64_t l = c.attention.integer("n_latent_heads");
  return l > 0 ? l : 2;
}

int64_t gla_rope_dim(const ModelConfig& c) {
  const int64_t r = c.attention.integer("rope_dim");
  return r > 0 ? r : c.resolved_head_dim() / 2;
}

void check_gla(const RunConfig& c, RuleChecker& k) {
  const auto& m = c.model;
  if (k.ok({"attention.n_latent_heads", "model.n_heads"})) {
    const int64_t l = latent_heads(m);
    if (l > m.n_heads || m.n_heads % l != 0)
      k.fail("attention.n_latent_heads", fmt::format("model.n_heads ({}) must be a multiple of the latent heads ({}): "
                                                     "each latent head serves an equal share of the query heads",
                                                     m.n_heads, l),
             {"model.n_heads"});
  }
  if (!k.ok({"attention.rope_dim", "model.head_dim", "model.d_model", "model.n_heads"})) return;
  const int64_t r = gla_rope_dim(m);
  if (r % 2 != 0 || r < 2)
    k.fail("attention.rope_dim", fmt::format("gla's decoupled rotary key has {} dims (head dim {}{}); RoPE needs an "
                                             "even number >= 2: set attention.rope_dim",
                                             r, m.resolved_head_dim(), m.attention.integer("rope_dim") == 0 ? ", halved" : ""),
           {"model.head_dim"});
}

}  // namespace

AttentionKeys gla_keys() {
  AttentionKeys v;
  v.kind = "gla";
  v.summary = "grouped latent attention: MLA's latent split into n_latent_heads heads, each serving its share of the "
              "query heads";
  v.options = {
      OptionSpec::integer("n_latent_heads", 0, 1024, 0, "latent heads h_c, a divisor of model.n_heads; 0: 2"),
      OptionSpec::integer("q_rank", 0, 65536, 0, "query compression rank; 0: none"),
      OptionSpec::integer("kv_rank", 0, 65536, 0, "latent width d_c per latent head; 0: 2 x head dim"),
      OptionSpec::integer("nope_dim", 0, 4096, 0, "per-head query/key dims without RoPE; 0: head dim"),
      OptionSpec::integer("rope_dim", 0, 4096, 0, "decoupled rotary dims (shared key); 0: head dim / 2"),
      OptionSpec::integer("v_dim", 0, 4096, 0, "per-head value dims; 0: head dim"),
      OptionSpec::choice("decode", {"naive", "absorbed"}, "absorbed",
                         "naive caches up-projected k, v; absorbed caches the latents and folds W_UK, W_UV per group"),
  };
  v.check = check_gla;
  v.rotary = [](const ModelConfig& c) {
    const int64_t r = gla_rope_dim(c);
    if (r < 2 || r % 2 != 0) return RotaryWidth{};  // the rope_dim rule reports it
    return RotaryWidth{r, fmt::format("gla's rotary key ({}, attention.rope_dim)", r), {"attention.rope_dim"}};
  };
  return v;
}

}  // namespace attnlab::config
