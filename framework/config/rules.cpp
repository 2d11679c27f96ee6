// The cross-key rules. Each names the key to change, where its value came
// from, and why the combination cannot work.
#include "config/rules.h"

#include "data/synthetic_tokens.h"
#include "config/attention_options.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

namespace attnlab::config {

namespace {

void check_model(const RunConfig& c, RuleChecker& k) {
  const auto& m = c.model;
  if (m.head_dim == 0 && k.ok({"model.d_model", "model.n_heads", "model.head_dim"}) && m.d_model % m.n_heads != 0)
    k.fail("model.d_model", fmt::format("{} is not divisible by model.n_heads ({}) and model.head_dim is 0 "
                                        "(derived); change one, or set model.head_dim", m.d_model, m.n_heads),
           {"model.n_heads"});
  if (k.ok({"train.seq_len", "model.max_seq_len"}) && c.train.seq_len > m.max_seq_len)
    k.fail("train.seq_len", fmt::format("{} is longer than model.max_seq_len ({})", c.train.seq_len, m.max_seq_len),
           {"model.max_seq_len"});
  if (k.ok({"train.steps", "train.init_from"}) && c.train.steps == 0 && c.train.init_from.empty())
    k.fail("train.steps", "0 trains nothing; it is only for a run that starts from converted weights "
                          "(train.init_from, written by attnlab convert)",
           {"train.init_from"});
  if (k.ok({"model.kv_share", "model.n_layers"}) && m.kv_share > m.n_layers)
    k.fail("model.kv_share", fmt::format("{} layers per shared cache exceeds model.n_layers ({}); use at most {}",
                                         m.kv_share, m.n_layers, m.n_layers),
           {"model.n_layers"});
}

// The attention variant's own rules (model/attention/registry.h).
void check_attention(const RunConfig& c, RuleChecker& k) {
  if (!k.ok({"attention.kind", "model.n_heads"})) return;
  attention_keys(c.model.attention.kind).check(c, k);
}

void check_position(const RunConfig& c, RuleChecker& k) {
  const auto& p = c.model.position;
  if (!k.ok({"position.kind", "position.fraction", "model.head_dim", "model.d_model", "model.n_heads"})) return;
  // What RoPE rotates is the variant's to say (the head dim, a decoupled key, ...).
  if (p.kind == "rope" && k.ok({"attention.kind"})) {
    const auto rotary = attention_keys(c.model.attention.kind).rotary(c.model);
    const double rot = static_cast<double>(rotary.width) * p.fraction;
    if (rotary.width > 0 && !rotates_pairs(rot)) {
      k.fail("position.fraction",
             fmt::format("{} of {} gives {} rotary dims; RoPE needs an even number of at least 2", p.fraction,
                         rotary.what, rot),
             rotary.keys);
    }
  }
  if (p.scaling.kind != "none" && p.kind != "rope" && k.ok({"position.scaling.kind"}))
    k.fail("position.scaling.kind", fmt::format("{} scaling extends RoPE, but position.kind is {}", p.scaling.kind, p.kind),
           {"position.kind"});
  // A scaling with factor 1 is plain RoPE under another name: refuse it
  // rather than let a run claim an extension it does not have.
  if (p.scaling.kind != "none" && p.kind == "rope" && p.scaling.factor <= 1.0 &&
      k.ok({"position.scaling.kind", "position.scaling.factor"}))
    k.fail("position.scaling.factor",
           fmt::format("{} with position.scaling.kind={} changes nothing (plain RoPE); set a factor > 1 "
                       "(e.g. position.scaling.factor=4) or position.scaling.kind=none",
                       p.scaling.factor, p.scaling.kind),
           {"position.scaling.kind"});
}

// The shapes a synthetic task needs (data/synthetic.h), checked before a run starts.
void check_synthetic(const RunConfig& c, RuleChecker& k) {
  const auto& d = c.data;
  const int64_t len = c.train.seq_len;
  if (!k.ok({"data.task", "data.vocab_size", "data.num_pairs", "data.num_queries", "data.passkey_digits",
             "train.seq_len"}))
    return;
  if (d.tokenizer != "byte")
    k.fail("data.tokenizer", "synthetic tasks generate token ids directly; leave data.tokenizer=byte");
  if (d.task == "mqar") {
    if (d.num_pairs > d.vocab_size / 2 - 1)
      k.fail("data.num_pairs", fmt::format("{} distinct keys need data.vocab_size >= {} (keys come from [1, V/2)), "
                                           "got {}",
                                           d.num_pairs, 2 * (d.num_pairs + 1), d.vocab_size),
             {"data.vocab_size"});
    if (d.num_queries > d.num_pairs)
      k.fail("data.num_queries", fmt::format("{} queries but only {} pairs (data.num_pairs) to query", d.num_queries,
                                             d.num_pairs),
             {"data.num_pairs"});
    else if (2 * d.num_pairs + 2 * d.num_queries > len)
      k.fail("train.seq_len", fmt::format("{} pairs and {} queries need 2 x ({} + {}) = {} tokens, more than "
                                          "train.seq_len ({})",
                                          d.num_pairs, d.num_queries, d.num_pairs, d.num_queries,
                                          2 * (d.num_pairs + d.num_queries), len),
             {"data.num_pairs", "data.num_queries"});
  } else if (d.task == "passkey") {
    if (d.vocab_size <= data::kPasskeyFillerStart)
      k.fail("data.vocab_size", fmt::format("passkey needs filler tokens beyond the digits and two markers: "
                                            "data.vocab_size > {}, got {}",
                                            data::kPasskeyFillerStart, d.vocab_size));
    if (2 * (d.passkey_digits + 1) >= len)
      k.fail("train.seq_len", fmt::format("a passkey of {} digits takes {} tokens (needle and answer); "
                                          "train.seq_len ({}) leaves no filler",
                                          d.passkey_digits, 2 * (d.passkey_digits + 1), len),
             {"data.passkey_digits"});
  }
}

void check_data(const RunConfig& c, RuleChecker& k) {
  const auto& d = c.data;
  if (k.ok({"data.dir"}) && d.dir.empty())
    k.fail("data.dir", "must not be empty (it would prepare corpora into the current directory); e.g. data.dir=data");
  if (!k.ok({"data.kind", "data.path", "data.tokenizer", "data.vocab_size"})) return;
  if (d.kind == "text") {
    std::error_code ec;
    if (d.path.empty())
      k.fail("data.path", "data.kind=text needs a file: set data.path=FILE");
    else if (!std::filesystem::is_regular_file(d.path, ec))
      k.fail("data.path", fmt::format("no such file: {}", d.path));
  }
  if (d.tokenizer == "sentencepiece" && d.vocab_size <= 0)
    k.fail("data.vocab_size", "sentencepiece needs a vocabulary size (data.vocab_size > 0)");
  if (d.kind == "synthetic") check_synthetic(c, k);
}

void check_run(const RunConfig& c, RuleChecker& k) {
  if (k.ok({"run.name"}) && c.run.name.size() > 200)
    k.fail("run.name", fmt::format("is {} characters long; a run directory name has at most 200", c.run.name.size()));
  else if (k.ok({"run.name"}) && !valid_run_name(c.run.name))
    k.fail("run.name", fmt::format("'{}' is not a safe directory name: use only A-Z a-z 0-9 . _ = - (not '.' or "
                                   "'..'), so that the run stays inside run.root", c.run.name));
  if (k.ok({"run.root"}) && c.run.root.empty()) k.fail("run.root", "must not be empty");
  if (k.ok({"optim.lr", "optim.min_lr"}) && c.optim.min_lr > c.optim.lr)
    k.fail("optim.min_lr", fmt::format("{} is above optim.lr ({})", c.optim.min_lr, c.optim.lr), {"optim.lr"});
  // Accepted by the schema so configs can name it, but refused until the
  // step is really captured: a flag that silently does nothing would mislead.
  if (k.ok({"train.cuda_graph"}) && c.train.cuda_graph)
    k.fail("train.cuda_graph", "CUDA-graph capture of the training step is not available yet (it arrives with the "
                               "benchmarks); set it to false");
}

}  // namespace

bool RuleChecker::ok(std::initializer_list<std::string> keys) const {
  for (const auto& k : keys)
    if (invalid_.count(k)) return false;
  return true;
}

void RuleChecker::fail(const std::string& key, const std::string& message, const std::vector<std::string>& related) {
  std::string text = message;
  for (const auto& r : related) text += fmt::format(" [{} from {}]", r, origin(r));
  problems_.push_back({key, origin(key), text});
}

std::string RuleChecker::origin(const std::string& key) const {
  const Node* n = tree_.at_path(key);
  return n ? n->origin : "built-in default";
}

bool rotates_pairs(double rot) {
  return std::abs(rot - std::round(rot)) <= 1e-9 && static_cast<int64_t>(std::round(rot)) % 2 == 0 && rot >= 2;
}

bool valid_run_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 200) return false;
  for (char ch : name) {
    bool ok = std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '=' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

void check_rules(const RunConfig& cfg, const Node& tree, const std::set<std::string>& invalid,
                 std::vector<Diagnostic>& problems) {
  RuleChecker k(tree, invalid, problems);
  check_model(cfg, k);
  check_attention(cfg, k);
  check_position(cfg, k);
  check_data(cfg, k);
  check_run(cfg, k);
}

}  // namespace attnlab::config
