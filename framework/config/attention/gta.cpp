// Configuration half of gta, Grouped-Tied Attention (Zadouri, Strauss, Dao,
// "Hardware-Efficient Attention for Fast Decoding", 2025, §3.3.1; model half:
// model/attention/gta.cpp).
#include <fmt/format.h>

#include "config/attention_options.h"
#include "config/rules.h"

namespace attnlab::config {

namespace {

// d_r after its default: half the head dim, as in the paper.
int64_t gta_rope_dim(const ModelConfig& c) {
  const int64_t r = c.attention.integer("rope_dim");
  return r > 0 ? r : c.resolved_head_dim() / 2;
}

void check_gta(const RunConfig& c, RuleChecker& k) {
  const auto& a = c.model.attention;
  const auto& m = c.model;
  if (k.ok({"attention.n_kv_heads", "model.n_heads"})) {
    const int64_t kv = a.integer("n_kv_heads");
    if (kv == 0)
      k.fail("attention.n_kv_heads", "gta needs a number of tied key/value heads (a divisor of model.n_heads)");
    else if (kv > m.n_heads || m.n_heads % kv != 0)
      k.fail("attention.n_kv_heads", fmt::format("model.n_heads ({}) must be a multiple of attention.n_kv_heads ({})",
                                                 m.n_heads, kv),
             {"model.n_heads"});
  }
  if (!k.ok({"attention.rope_dim", "model.head_dim", "model.d_model", "model.n_heads"})) return;
  const int64_t r = gta_rope_dim(m), e = m.resolved_head_dim();
  if (r % 2 != 0 || r < 2)
    k.fail("attention.rope_dim", fmt::format("gta's shared rotary key has {} dims (head dim {}{}); RoPE needs an even "
                                             "number >= 2: set attention.rope_dim",
                                             r, e, a.integer("rope_dim") == 0 ? ", halved" : ""),
           {"model.head_dim"});
  else if (r > e)
    k.fail("attention.rope_dim", fmt::format("{} exceeds the head dim ({}): the rotary key replaces the last "
                                             "rope_dim dims of each tied key",
                                             r, e),
           {"model.head_dim"});
}

}  // namespace

AttentionKeys gta_keys() {
  AttentionKeys v;
  v.kind = "gta";
  v.summary = "grouped-tied attention: n_kv_heads tied key/value states plus one shared rotary key of rope_dim";
  v.options = {
      OptionSpec::integer("n_kv_heads", 0, 1024, 0, "tied key/value heads, a divisor of model.n_heads (required)"),
      OptionSpec::integer("rope_dim", 0, 4096, 0, "the shared rotary key's dims; 0: head dim / 2"),
  };
  v.check = check_gta;
  v.rotary = [](const ModelConfig& c) {
    const int64_t r = gta_rope_dim(c);
    if (r < 2 || r % 2 != 0) return RotaryWidth{};  // the rope_dim rule reports it
    return RotaryWidth{r, fmt::format("gta's rotary key ({}, attention.rope_dim)", r), {"attention.rope_dim"}};
  };
  return v;
}

}  // namespace attnlab::config
