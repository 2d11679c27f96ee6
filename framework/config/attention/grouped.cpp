// Configuration half of mha, gqa and mqa (model half: model/attention/grouped.cpp).
#include <fmt/format.h>

#include "config/attention_options.h"
#include "config/rules.h"

namespace attnlab::config {

namespace {

void check_grouped(const RunConfig& c, RuleChecker& k) {
  const auto& a = c.model.attention;
  const auto& m = c.model;
  if (!k.ok({"attention.n_kv_heads", "model.n_heads"})) return;
  const int64_t kv = a.integer("n_kv_heads");
  if (a.kind == "mha" && kv != 0 && kv != m.n_heads)
    k.fail("attention.n_kv_heads", fmt::format("mha has one key/value head per query head ({}), got {}; "
                                               "use attention=gqa for fewer", m.n_heads, kv));
  if (a.kind == "mqa" && kv > 1)
    k.fail("attention.n_kv_heads", fmt::format("mqa has exactly 1 key/value head, got {}; use attention=gqa", kv));
  if (a.kind == "gqa") {
    if (kv == 0)
      k.fail("attention.n_kv_heads", "gqa needs a number of key/value heads (a divisor of model.n_heads)");
    else if (kv > m.n_heads || m.n_heads % kv != 0)
      k.fail("attention.n_kv_heads", fmt::format("model.n_heads ({}) must be a multiple of attention.n_kv_heads ({})",
                                                 m.n_heads, kv),
             {"model.n_heads"});
  }
}

AttentionKeys grouped_keys(const std::string& kind, std::string summary) {
  AttentionKeys v;
  v.kind = kind;
  v.summary = std::move(summary);
  v.options = {OptionSpec::integer("n_kv_heads", 0, 1024, 0,
                                   kind == "gqa" ? "key/value heads, a divisor of model.n_heads (required)"
                                                 : "key/value heads; 0: as the kind implies (mha: n_heads, mqa: 1)")};
  v.check = check_grouped;
  v.rotary = [](const ModelConfig& c) {
    const int64_t e = c.resolved_head_dim();
    return RotaryWidth{e, fmt::format("the head dim ({})", e), {}};
  };
  return v;
}

}  // namespace

AttentionKeys mha_keys() { return grouped_keys("mha", "multi-head attention: caches a key and a value per query head"); }
AttentionKeys gqa_keys() {
  return grouped_keys("gqa", "grouped-query attention: query heads share n_kv_heads key/value heads");
}
AttentionKeys mqa_keys() {
  return grouped_keys("mqa", "multi-query attention: every query head shares one key/value head");
}

}  // namespace attnlab::config
