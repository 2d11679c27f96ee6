// Configuration half of mla (model half: model/attention/latent.cpp): its keys,
// the one source of its default widths, and its rules.
#include "config/attention/mla.h"

#include <fmt/format.h>

#include "config/attention_options.h"
#include "config/rules.h"

namespace attnlab::config {

LatentWidths latent_widths(const ModelConfig& config) {
  const auto& a = config.attention;
  const int64_t e = config.resolved_head_dim();
  LatentWidths w;
  w.q_rank = a.integer("q_rank");
  w.kv_rank = a.integer("kv_rank") > 0 ? a.integer("kv_rank") : 2 * e;
  w.nope_dim = a.integer("nope_dim") > 0 ? a.integer("nope_dim") : e;
  w.rope_dim = a.word("rope_mode") != "decoupled" ? 0 : a.integer("rope_dim") > 0 ? a.integer("rope_dim") : e / 2;
  w.v_dim = a.integer("v_dim") > 0 ? a.integer("v_dim") : e;
  w.rope_heads = a.integer("rope_heads");
  w.rope_spectrum = w.rope_dim > 0 && a.integer("rope_spectrum") > 0 ? a.integer("rope_spectrum") : w.rope_dim;
  return w;
}

namespace {

void check_latent(const RunConfig& c, RuleChecker& k) {
  const auto& a = c.model.attention;
  const auto& m = c.model;
  const std::string rope_mode = a.word("rope_mode"), decode = a.word("decode");
  if (rope_mode == "coupled" && decode == "absorbed" && k.ok({"attention.rope_mode", "attention.decode"}))
    k.fail("attention.decode", "absorbed decode is impossible with attention.rope_mode=coupled: RoPE sits between "
                               "the query and W_UK, so W_UK cannot be folded into the query; use "
                               "attention.decode=naive or attention.rope_mode=decoupled",
           {"attention.rope_mode"});
  if (!k.ok({"attention.rope_mode", "attention.rope_dim", "attention.nope_dim", "position.kind", "model.head_dim"}))
    return;
  const LatentWidths dims = latent_widths(m);
  const int64_t head = m.resolved_head_dim();
  if (rope_mode == "decoupled") {
    if (a.integer("rope_dim") == 0 && (dims.rope_dim % 2 != 0 || dims.rope_dim < 2))
      k.fail("attention.rope_dim", fmt::format("0 derives a decoupled rotary key of head dim / 2 = {} dims from the "
                                               "head dim ({}); RoPE needs an even number >= 2: set "
                                               "attention.rope_dim, or a head dim that is a multiple of 4",
                                               dims.rope_dim, head),
             {"model.head_dim", "model.d_model", "model.n_heads"});
    else if (dims.rope_dim % 2 != 0)
      k.fail("attention.rope_dim", fmt::format("{} is odd; RoPE rotates pairs of dims", dims.rope_dim));
    else if (dims.rope_dim < 2)
      k.fail("attention.rope_dim", fmt::format("the head dim ({}) leaves a decoupled rotary key of {} dims; set "
                                               "attention.rope_dim to an even number >= 2, or rope_mode=none",
                                               head, dims.rope_dim),
             {"model.head_dim"});
    else if (dims.rope_dim > head)
      k.fail("attention.rope_dim", fmt::format("{} exceeds the head dim ({})", dims.rope_dim, head),
             {"model.d_model", "model.n_heads", "model.head_dim"});
  }
  if (rope_mode == "decoupled" && k.ok({"attention.rope_heads"}) && m.n_heads % dims.rope_heads != 0)
    k.fail("attention.rope_heads", fmt::format("model.n_heads ({}) must be a multiple of attention.rope_heads ({}): "
                                               "query heads share the rotary keys in equal groups",
                                               m.n_heads, dims.rope_heads),
           {"model.n_heads"});
  if (rope_mode == "decoupled" && a.integer("rope_spectrum") > 0 && k.ok({"attention.rope_spectrum", "position.dims"})) {
    const auto& p = c.model.position;
    const double kept = p.fraction * static_cast<double>(dims.rope_spectrum);
    if (dims.rope_spectrum < dims.rope_dim || dims.rope_spectrum % 2 != 0)
      k.fail("attention.rope_spectrum", fmt::format("{} must be an even width of at least attention.rope_dim ({})",
                                                    dims.rope_spectrum, dims.rope_dim));
    else if (p.dims == "first")
      k.fail("attention.rope_spectrum", "picks frequencies of a wider head, which position.dims=high, low or "
                                        "uniform selects (MHA2MLA); first would give the key a spectrum of its own",
             {"position.dims"});
    else if (kept != static_cast<double>(dims.rope_dim))
      k.fail("attention.rope_spectrum", fmt::format("position.fraction ({}) of {} keeps {} dims, but the rotary key "
                                                    "has attention.rope_dim = {}",
                                                    p.fraction, dims.rope_spectrum, kept, dims.rope_dim),
             {"position.fraction", "attention.rope_dim"});
  }
  if (rope_mode == "coupled" && dims.nope_dim % 2 != 0)
    k.fail("attention.nope_dim", fmt::format("coupled RoPE rotates the nope dims, which must be even, got {}",
                                             dims.nope_dim));
  const auto& p = c.model.position;
  if (rope_mode != "none" && p.kind != "rope")
    k.fail("attention.rope_mode", fmt::format("{} applies RoPE but position.kind is {}; use position=rope or "
                                              "attention.rope_mode=none", rope_mode, p.kind),
           {"position.kind"});
  if (rope_mode == "none" && p.kind == "rope")
    k.fail("attention.rope_mode", "none rotates nothing, so position=rope would be silently unused; use "
                                  "position=none (NoPE, or alibi/learned) or attention.rope_mode=decoupled",
           {"position.kind"});
}

}  // namespace

AttentionKeys mla_keys() {
  AttentionKeys v;
  v.kind = "mla";
  v.summary = "multi-head latent attention (DeepSeek-V2): caches one kv_rank latent and a shared rope_dim rotary key";
  v.options = {
      OptionSpec::integer("q_rank", 0, 65536, 0, "query compression rank; 0: none"),
      OptionSpec::integer("kv_rank", 0, 65536, 0, "cached latent width d_c; 0: 2 x head dim"),
      OptionSpec::integer("nope_dim", 0, 4096, 0, "per-head query/key dims without RoPE; 0: head dim"),
      OptionSpec::integer("rope_dim", 0, 4096, 0, "decoupled rotary dims (shared key); 0: head dim / 2"),
      OptionSpec::integer("v_dim", 0, 4096, 0, "per-head value dims; 0: head dim"),
      OptionSpec::choice("decode", {"naive", "absorbed"}, "absorbed",
                         "naive caches up-projected k, v; absorbed caches the latent and folds W_UK, W_UV"),
      OptionSpec::choice("rope_mode", {"decoupled", "none", "coupled"}, "decoupled", "where RoPE acts"),
      OptionSpec::integer("rope_heads", 1, 4096, 1,
                          "decoupled rotary keys: 1 shared by all heads (DeepSeek), n_heads (MHA2MLA), or one per "
                          "kv group (a converted GQA)"),
      OptionSpec::integer("rope_spectrum", 0, 65536, 0,
                          "0: RoPE frequencies of rope_dim itself; else the rotary key's pairs are those "
                          "position.dims keeps of a head this wide (a converted model's head dim)"),
      OptionSpec::choice("kv_norm", {"rms", "none"}, "rms",
                         "RMSNorm on the latent (DeepSeek); none for a model converted from MHA"),
  };
  v.check = check_latent;
  v.rotary = [](const ModelConfig& c) {
    // Partial RoPE acts on the rotated dims: the decoupled key, or the nope dims when coupled.
    const auto mode = c.attention.word("rope_mode");
    if (mode == "none") return RotaryWidth{};
    const auto w = latent_widths(c);
    const bool decoupled = mode == "decoupled";
    const bool spectrum = decoupled && c.attention.integer("rope_spectrum") > 0;
    const int64_t width = !decoupled ? w.nope_dim : spectrum ? w.rope_spectrum : w.rope_dim;
    const std::string key = !decoupled ? "attention.nope_dim" : spectrum ? "attention.rope_spectrum" : "attention.rope_dim";
    if (width < 2) return RotaryWidth{};  // the rope_dim rule reports it
    return RotaryWidth{width, fmt::format("MLA's rotated width ({}, {})", width, key), {key}};
  };
  return v;
}

}  // namespace attnlab::config
