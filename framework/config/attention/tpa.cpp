// Configuration half of tpa, Tensor Product Attention (Zhang et al., "Tensor
// Product Attention Is All You Need", 2025; model half: model/attention/tpa.cpp).
#include <fmt/format.h>

#include "config/attention_options.h"
#include "config/rules.h"

namespace attnlab::config {

AttentionKeys tpa_keys() {
  AttentionKeys v;
  v.kind = "tpa";
  v.summary = "tensor product attention: queries, keys and values as sums of rank-1 head x head-dim products; "
              "caches the key and value factors";
  v.options = {
      OptionSpec::integer("q_rank", 0, 65536, 0, "query factor rank R_q; 0: 6 (T6's default)"),
      OptionSpec::integer("k_rank", 0, 1024, 0, "key factor rank R_K; 0: 2"),
      OptionSpec::integer("v_rank", 0, 1024, 0, "value factor rank R_V; 0: 2"),
      OptionSpec::choice("decode", {"naive", "absorbed"}, "absorbed",
                         "naive caches k, v formed from the factors; absorbed caches the factors and scores from them"),
  };
  v.check = [](const RunConfig&, RuleChecker&) {};  // every rank >= 1 works; the schema's ranges suffice
  v.rotary = [](const ModelConfig& c) {
    // RoPE rotates the head-dim factors B_Q and B_K over the whole head dim.
    const int64_t e = c.resolved_head_dim();
    return RotaryWidth{e, fmt::format("the head dim ({})", e), {}};
  };
  return v;
}

}  // namespace attnlab::config
