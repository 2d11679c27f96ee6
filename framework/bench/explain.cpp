// `attnlab explain mla` (see explain.h and docs/mla.md).
#include "bench/explain.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include "core/error.h"
#include "model/attention/latent.h"
#include "model/attention/registry.h"
#include "model/kv_cache.h"
#include "model/position/position.h"

namespace attnlab::bench {

namespace {

using model::LatentAttention;

constexpr int64_t kBatch = 2;
constexpr int64_t kTokens = 8;    // S: positions 0..7
constexpr int64_t kPrefill = 4;   // the real layer prefills 4 tokens, then decodes 4 one at a time

double max_abs(const torch::Tensor& t) { return t.numel() == 0 ? 0.0 : t.abs().max().item<double>(); }
double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return max_abs(a - b); }
std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }

// The refusals: explain mla measures MLA's decoupled design and builds the
// coupled one itself, so the config must be mla, decoupled, with RoPE.
void check_config(const ModelConfig& m) {
  if (m.attention.kind != "mla")
    throw_user_error("attention.kind", "",
                     fmt::format("`explain mla` explains MLA: expected mla, got '{}' (drop the attention override)",
                                 m.attention.kind));
  if (m.attention.word("rope_mode") != "decoupled")
    throw_user_error("attention.rope_mode", "",
                     fmt::format("`explain mla` needs MLA's decoupled design (attention.rope_mode=decoupled; it "
                                 "builds the coupled one itself to compare), got '{}'",
                                 m.attention.word("rope_mode")));
  if (m.position.kind != "rope")
    throw_user_error("position.kind", "",
                     fmt::format("`explain mla` shows what RoPE does to the absorption: expected rope, got '{}'",
                                 m.position.kind));
}

// The layer's query, split and rotated as LatentAttention::forward does:
// q_nope [B,H,T,d_n] (no position) and q_pe [B,H,T,R] (rotated at 0..T-1).
std::pair<torch::Tensor, torch::Tensor> query(LatentAttention& layer, const torch::Tensor& x_BTD,
                                              const model::Position& position) {
  const auto& o = layer.options();
  auto q = o.q_rank > 0 ? layer.wq_b(layer.q_norm(layer.wq_a(x_BTD))) : layer.wq(x_BTD);
  auto q_BHTE = q.view({x_BTD.size(0), x_BTD.size(1), o.n_heads, o.qk_dim()}).transpose(1, 2);
  auto q_pe = q_BHTE.narrow(-1, o.nope_dim, o.rope_dim);
  if (o.rope_dim > 0) q_pe = position.rotate(q_pe, 0);
  return {q_BHTE.narrow(-1, 0, o.nope_dim), q_pe};
}

// The latent c [B,S,C] (RMS-normed, position-free) and the rotary key k_pe [B,S,R].
std::pair<torch::Tensor, torch::Tensor> latent(LatentAttention& layer, const torch::Tensor& x_BTD,
                                               const model::Position& position) {
  const auto& o = layer.options();
  auto kv = layer.wkv_a(x_BTD);
  auto k_pe = kv.narrow(-1, o.kv_rank, o.rope_dim);
  if (o.rope_dim > 0) k_pe = position.rotate(k_pe, 0);
  return {layer.kv_norm(kv.narrow(-1, 0, o.kv_rank)), k_pe};
}

// "ckv[2,8,64] + krope[2,8,16]": what a layer cache holds, batch and length included.
std::string held(const model::LayerCache& cache) {
  std::string out;
  for (const auto& p : cache.layout().parts) {
    std::vector<int64_t> shape{cache.batch(), cache.length()};
    shape.insert(shape.end(), p.shape.begin(), p.shape.end());
    out += fmt::format("{}{}[{}]", out.empty() ? "" : " + ", p.name, fmt::join(shape, ","));
  }
  return out;
}

struct DecodeRun {
  torch::Tensor out;        // [B, decode steps, D]: the outputs of the one-token steps
  std::string held;
  int64_t bytes = 0;
  bool all_absorbed = true; // every decode step ran InnerPath::kAbsorbed
};

// The real layer in `mode`: prefill kPrefill tokens, then one token per step
// at positions kPrefill..S-1, each attending over its fp64 LayerCache.
DecodeRun decode(LatentAttention& layer, model::DecodeMode mode, const torch::Tensor& x_BTD,
                 const model::Position& position) {
  layer.set_decode(mode);  // the cache layout follows the mode: allocate after the switch
  model::LayerCache cache(layer.cache_layout(), x_BTD.size(0), x_BTD.size(1), torch::kFloat64, torch::kCPU);
  model::AttnContext ctx;
  ctx.position = &position;
  ctx.cache = &cache;
  layer.forward(x_BTD.narrow(1, 0, kPrefill), ctx);
  DecodeRun run;
  std::vector<torch::Tensor> outs;
  for (int64_t t = kPrefill; t < x_BTD.size(1); ++t) {
    ctx.start = t;
    ctx.ran = model::InnerPath::kNone;
    outs.push_back(layer.forward(x_BTD.narrow(1, t, 1), ctx));
    run.all_absorbed = run.all_absorbed && ctx.ran == model::InnerPath::kAbsorbed;
  }
  run.out = torch::cat(outs, 1);
  run.held = held(cache);
  run.bytes = cache.bytes();
  return run;
}

// W [H,d_n,C] with each column rotated as a key dim vector at `pos`: R(pos) W.
// Rotation is linear, so (R(pos) W) c = R(pos) (W c).
torch::Tensor rotate_columns(const torch::Tensor& w_HNC, const model::Position& position, int64_t pos) {
  auto cols_HC1N = w_HNC.transpose(1, 2).unsqueeze(2);  // one "token" at dim -2, the d_n dims last
  return position.rotate(cols_HC1N, pos).squeeze(2).transpose(1, 2);
}

}  // namespace

MlaExplanation explain_mla(const RunConfig& cfg) {
  const ModelConfig& m = cfg.model;
  check_config(m);
  auto options = model::LatentOptions::from(m);
  if (options.nope_dim % 2 != 0)
    throw_user_error("attention.nope_dim", "",
                     fmt::format("`explain mla` rotates the nope dims for its coupled comparison; they must be even, "
                                 "got {}",
                                 options.nope_dim));
  MlaExplanation e;
  e.model_summary = fmt::format("{} layers, d_model {}, {} heads of {}", m.n_layers, m.d_model, m.n_heads,
                                m.resolved_head_dim());
  e.seed = cfg.seed;
  e.batch = kBatch;
  e.tokens = kTokens;
  e.d_model = options.d_model;
  e.n_heads = options.n_heads;
  e.kv_rank = options.kv_rank;
  e.nope_dim = options.nope_dim;
  e.rope_dim = options.rope_dim;
  e.v_dim = options.v_dim;
  e.q_rank = options.q_rank;

  // (1) What each design caches per token per layer: the registry's layouts
  // (the same objects a KvCache allocates from), in the config's cache dtype.
  const auto& mla = model::attention_entry("mla");
  const auto format = model::parse_cache_format(m.attention.cache_dtype);  // scales included when quantized
  auto absorbed_cfg = m, naive_cfg = m;
  absorbed_cfg.attention.set("decode", "absorbed");
  naive_cfg.attention.set("decode", "naive");
  const auto mha_cfg = model::with_kind(m, "mha");
  const auto absorbed_layout = mla.layout(absorbed_cfg), naive_layout = mla.layout(naive_cfg),
             mha_layout = model::attention_entry("mha").layout(mha_cfg);
  e.cache_dtype = m.attention.cache_dtype;
  e.mha_parts = mha_layout.describe();
  e.naive_parts = naive_layout.describe();
  e.absorbed_parts = absorbed_layout.describe();
  e.mha_elements = mha_layout.elements_per_token();
  e.naive_elements = naive_layout.elements_per_token();
  e.absorbed_elements = absorbed_layout.elements_per_token();
  e.mha_bytes = mha_layout.bytes_per_token(format);
  e.naive_bytes = naive_layout.bytes_per_token(format);
  e.absorbed_bytes = absorbed_layout.bytes_per_token(format);
  e.absorbed_formula = mla.cache_elements(absorbed_cfg);
  e.mha_over_absorbed = static_cast<double>(e.mha_elements) / static_cast<double>(e.absorbed_elements);

  // One MLA layer and a few random tokens, fp64 so that rounding is ~1e-16.
  torch::manual_seed(static_cast<uint64_t>(cfg.seed));
  options.decode = model::DecodeMode::kAbsorbed;
  auto layer = std::make_shared<LatentAttention>(options);
  layer->to(torch::kFloat64);
  const auto position = model::make_position({m.position, m.d_model, m.max_seq_len});
  const auto x_BSD = torch::randn({kBatch, kTokens, m.d_model}, torch::kFloat64);
  torch::NoGradGuard no_grad;

  // (2) The absorption identity, on explicit tensors: every query at every key.
  auto [q_nope, q_pe] = query(*layer, x_BSD, *position);
  auto [c, k_pe] = latent(*layer, x_BSD, *position);
  const auto w_uk_HNC = layer->wkv_b->weight.view({options.n_heads, options.nope_dim + options.v_dim, options.kv_rank})
                            .narrow(1, 0, options.nope_dim);
  auto rope_scores = torch::einsum("bhtr,bsr->bhts", {q_pe, k_pe});  // the decoupled part, shared by both
  //   naive: decompress every key, k_nope = W_UK c, and dot it with q_nope
  auto k_nope = torch::einsum("bsc,hnc->bhsn", {c, w_uk_HNC});
  auto scores_naive = torch::einsum("bhtn,bhsn->bhts", {q_nope, k_nope}) + rope_scores;
  //   absorbed: fold W_UK into the query once, q~ = q_nope W_UK, and dot it with the latent
  auto q_tilde = torch::einsum("bhtn,hnc->bhtc", {q_nope, w_uk_HNC});
  auto scores_absorbed = torch::einsum("bhtc,bsc->bhts", {q_tilde, c}) + rope_scores;
  e.q_nope_shape = shape_of(q_nope);
  e.w_uk_shape = shape_of(w_uk_HNC);
  e.k_nope_shape = shape_of(k_nope);
  e.q_tilde_shape = shape_of(q_tilde);
  e.latent_shape = shape_of(c);
  e.k_pe_shape = shape_of(k_pe);
  e.scores_shape = shape_of(scores_naive);
  e.score_max = max_abs(scores_naive);
  e.absorbed_score_error = max_diff(scores_naive, scores_absorbed);

  //   the real layer: the same weights decoding through its cache in both modes
  e.prefill_tokens = kPrefill;
  e.decode_steps = kTokens - kPrefill;
  const auto absorbed_run = decode(*layer, model::DecodeMode::kAbsorbed, x_BSD, *position);
  const auto naive_run = decode(*layer, model::DecodeMode::kNaive, x_BSD, *position);
  e.decode_ran_absorbed = absorbed_run.all_absorbed;
  e.absorbed_cache_held = absorbed_run.held;
  e.naive_cache_held = naive_run.held;
  e.absorbed_cache_bytes = absorbed_run.bytes;
  e.naive_cache_bytes = naive_run.bytes;
  e.decode_output_max = max_abs(naive_run.out);
  e.decode_output_error = max_diff(absorbed_run.out, naive_run.out);

  // (3) Coupled RoPE on the same weights: the rotation goes on the
  // up-projected key, k_n = R(n) W_UK c_n, and on q_nope. True scores:
  auto q_rot = position->rotate(q_nope, 0);
  auto coupled = torch::einsum("bhtn,bhsn->bhts", {q_rot, position->rotate(k_nope, 0)});
  //   folding W_UK into the query once means picking one rotation, here the
  //   one of key position p (the newest token): q~_m = (R(m) q_m)^T R(p) W_UK
  e.fold_position = kTokens - 1;
  auto fold = torch::einsum("bhtc,bsc->bhts",
                            {torch::einsum("bhtn,hnc->bhtc", {q_rot, rotate_columns(w_uk_HNC, *position, e.fold_position)}), c});
  auto error = (fold - coupled).abs();
  e.coupled_score_max = max_abs(coupled);
  e.fold_error_at_fold = max_abs(error.narrow(-1, e.fold_position, 1));
  e.fold_error_elsewhere = max_abs(error.narrow(-1, 0, e.fold_position));
  //   the layer itself refuses to absorb with coupled RoPE
  auto coupled_cfg = m;
  coupled_cfg.attention.set("rope_mode", "coupled").set("rope_dim", 0).set("decode", "absorbed");
  try {
    mla.make(coupled_cfg, false);
  } catch (const UserError& err) {
    e.coupled_absorbed_refusal = err.what();
  }

  // (4) Every registered variant at this shape.
  e.table = kv_table(m);
  return e;
}

std::string format_explanation(const MlaExplanation& e) {
  auto sh = [](const std::vector<int64_t>& s) { return fmt::format("[{}]", fmt::join(s, ",")); };
  std::string out;
  out += fmt::format("attnlab explain mla: one MLA layer of the configured model ({}), fp64, seed {}\n",
                     e.model_summary, e.seed);
  out += fmt::format("  H={} heads, C=d_c={} latent (attention.kv_rank), d_n={} (nope_dim), R=d_r={} (rope_dim), "
                     "d_v={} (v_dim), d_q={} (q_rank{})\n",
                     e.n_heads, e.kv_rank, e.nope_dim, e.rope_dim, e.v_dim, e.q_rank,
                     e.q_rank == 0 ? ": plain query projection" : "");
  out += fmt::format("  input x[B,S,D] = [{},{},{}] ~ N(0,1), positions 0..{}\n\n", e.batch, e.tokens, e.d_model,
                     e.tokens - 1);

  out += fmt::format("(1) What MLA caches, per token per layer (registry layouts, cache {})\n", e.cache_dtype);
  auto row = [](const std::string& name, const std::string& parts, int64_t elems, int64_t bytes) {
    return fmt::format("  {:<22} {:<22} {:>6} elements {:>7} bytes\n", name, parts, elems, bytes);
  };
  out += row("MHA, same heads", e.mha_parts, e.mha_elements, e.mha_bytes);
  out += row("MLA, naive decode", e.naive_parts, e.naive_elements, e.naive_bytes);
  out += row("MLA, absorbed decode", e.absorbed_parts, e.absorbed_elements, e.absorbed_bytes);
  out += fmt::format("  absorbed MLA caches the latent once (it is both key and value) plus one rotary key shared "
                     "by all heads:\n  C + R = {} + {} = {} (the registry's paper formula d_c + d_r gives {}); "
                     "MHA / MLA = {:.1f}x.\n",
                     e.kv_rank, e.rope_dim, e.absorbed_elements, e.absorbed_formula, e.mha_over_absorbed);
  out += fmt::format("  Naive decode caches the up-projected keys and values, H(d_n + R + d_v) = {}: more than "
                     "MHA's {}.\n\n",
                     e.naive_elements, e.mha_elements);

  out += "(2) Absorption: q_nope . (W_UK c) = (q_nope W_UK) . c, so no key is needed\n";
  out += fmt::format("  q_nope[B,H,T,d_n] = {}   W_UK[H,d_n,C] = {}   latent c[B,S,C] = {}   k_pe[B,S,R] = {}\n",
                     sh(e.q_nope_shape), sh(e.w_uk_shape), sh(e.latent_shape), sh(e.k_pe_shape));
  out += fmt::format("  naive:    k_nope[B,H,S,d_n] = einsum(bsc,hnc->bhsn, c, W_UK) = {}\n", sh(e.k_nope_shape));
  out += fmt::format("            scores[B,H,T,S] = q_nope . k_nope + q_pe . k_pe = {}\n", sh(e.scores_shape));
  out += fmt::format("  absorbed: q~[B,H,T,C] = einsum(bhtn,hnc->bhtc, q_nope, W_UK) = {}\n", sh(e.q_tilde_shape));
  out += fmt::format("            scores[B,H,T,S] = q~ . c + q_pe . k_pe = {}\n", sh(e.scores_shape));
  out += fmt::format("  max |scores_naive - scores_absorbed| = {:.2e} (fp64; max |score| = {:.2e}): identical up "
                     "to rounding\n",
                     e.absorbed_score_error, e.score_max);
  out += fmt::format("  The real layer (model::LatentAttention), same weights: prefill {} tokens, then decode {} "
                     "one at a time:\n",
                     e.prefill_tokens, e.decode_steps);
  out += fmt::format("    absorbed: {} the absorbed path; its cache holds {} ({} bytes in fp64):\n"
                     "              it attended over latent[B,S,C] and materialised no key and no value\n",
                     e.decode_ran_absorbed ? "every decode step ran" : "NOT every decode step ran",
                     e.absorbed_cache_held, e.absorbed_cache_bytes);
  out += fmt::format("    naive:    its cache holds {} ({} bytes in fp64)\n", e.naive_cache_held,
                     e.naive_cache_bytes);
  out += fmt::format("    max |out_absorbed - out_naive| over the decode steps = {:.2e} (max |out| = {:.2e})\n\n",
                     e.decode_output_error, e.decode_output_max);

  out += "(3) Why RoPE is decoupled: fold W_UK through a rotation\n";
  out += "  Coupled RoPE rotates the up-projected key: score(m,n) = (R(m) q_m)^T (R(n) W_UK c_n)\n"
         "                                                      = q_m^T R(n-m) W_UK c_n\n";
  out += fmt::format("  Fold W_UK once, through the rotation of key position p = {}: q~_m = (R(m) q_m)^T R({}) "
                     "W_UK, score = q~_m . c_n\n",
                     e.fold_position, e.fold_position);
  out += fmt::format("    keys at n = p:   max |fold - coupled| = {:.2e}  (exact where it was folded)\n",
                     e.fold_error_at_fold);
  out += fmt::format("    keys at n != p:  max |fold - coupled| = {:.2e}  (max |coupled score| = {:.2e}): wrong;\n"
                     "    R(n) differs for every cached key, so no single matrix folds and each key would be "
                     "re-expanded\n",
                     e.fold_error_elsewhere, e.coupled_score_max);
  out += fmt::format("  Decoupled (MLA): c carries no position, q_pe . k_pe carries it; absorbed = naive at every "
                     "(m, n): {:.2e} (from (2))\n",
                     e.absorbed_score_error);
  if (!e.coupled_absorbed_refusal.empty())
    out += fmt::format("  attention.rope_mode=coupled with decode=absorbed is refused by the layer:\n    {}\n",
                       e.coupled_absorbed_refusal);
  out += "\n";

  out += "(4) What every registered variant caches (attnlab kv)\n";
  out += format_kv_table(e.table);
  return out;
}

}  // namespace attnlab::bench
