// The schema table (one line per key) and the conversion of a resolved tree
// into RunConfig with type and range checks.
#include "config/schema.h"

#include <filesystem>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "config/scalars.h"
#include "config/attention_options.h"

namespace attnlab::config {

namespace {

constexpr double kBig = 1e12;
#define FIELD(expr) [](RunConfig& c) -> void* { return &c.expr; }

KeySpec I(const char* key, double lo, double hi, void* (*f)(RunConfig&), const char* doc) {
  return {key, KeyType::Int, lo, hi, false, {}, doc, f, nullptr};
}
KeySpec R(const char* key, double lo, double hi, bool open, void* (*f)(RunConfig&), const char* doc) {
  return {key, KeyType::Float, lo, hi, open, {}, doc, f, nullptr};
}
KeySpec B(const char* key, void* (*f)(RunConfig&), const char* doc) {
  return {key, KeyType::Bool, 0, 0, false, {}, doc, f, nullptr};
}
KeySpec S(const char* key, void* (*f)(RunConfig&), const char* doc) {
  return {key, KeyType::String, 0, 0, false, {}, doc, f, nullptr};
}
KeySpec E(const char* key, std::vector<std::string> options, void* (*f)(RunConfig&), const char* doc) {
  return {key, KeyType::Enum, 0, 0, false, std::move(options), doc, f, nullptr};
}

// The variants' own attention.<key>s, as the registry declares them. Each is
// stored by name in AttentionConfig; the accessor fills in the declared
// default the first time a key is read, so every schema key has a value.
std::vector<KeySpec> make_fixed_schema();

std::vector<KeySpec> attention_option_keys() {
  std::vector<KeySpec> out;
  for (const auto& o : attention_options()) {
    const std::string key = o.key;
    if (o.is_enum) {
      const std::string fallback = o.default_word;
      out.push_back({"attention." + key, KeyType::Enum, 0, 0, false, o.options, o.doc,
                     [key, fallback](RunConfig& c) -> void* {
                       return &c.model.attention.words.try_emplace(key, fallback).first->second;
                     },
                     nullptr});
    } else {
      const int64_t fallback = o.default_int;
      out.push_back({"attention." + key, KeyType::Int, static_cast<double>(o.min), static_cast<double>(o.max), false,
                     {}, o.doc,
                     [key, fallback](RunConfig& c) -> void* {
                       return &c.model.attention.ints.try_emplace(key, fallback).first->second;
                     },
                     nullptr});
    }
  }
  return out;
}

std::vector<KeySpec> make_schema() {
  std::vector<KeySpec> table = make_fixed_schema();
  // The variants' options follow attention.kind, so `--help` and --cfg group them.
  auto after = std::find_if(table.begin(), table.end(), [](const KeySpec& s) { return s.key == "attention.kind"; });
  auto extra = attention_option_keys();
  table.insert(after + 1, extra.begin(), extra.end());
  return table;
}

std::vector<KeySpec> make_fixed_schema() {
  return {
      I("seed", 0, 4294967295.0, FIELD(seed), "random seed for initialisation (and batch order when data_seed is -1)"),
      I("data_seed", -1, 4294967295.0, FIELD(data_seed), "random seed for batch order; -1: seed (config.yaml sets ${seed})"),
      S("run.name", FIELD(run.name), "run directory name under run.root ([A-Za-z0-9._=-])"),
      S("run.root", FIELD(run.root), "results root; run directories never leave it"),
      I("model.n_layers", 1, 1024, FIELD(model.n_layers), "transformer blocks"),
      I("model.d_model", 1, 65536, FIELD(model.d_model), "residual stream width"),
      I("model.n_heads", 1, 1024, FIELD(model.n_heads), "query heads"),
      I("model.head_dim", 0, 4096, FIELD(model.head_dim), "per-head width; 0: d_model / n_heads"),
      I("model.d_ff", 0, 1 << 20, FIELD(model.d_ff), "MLP hidden width; 0: 4*d_model (gelu) or 8/3 rule (swiglu)"),
      E("model.mlp", {"gelu", "swiglu"}, FIELD(model.mlp), "MLP kind"),
      E("model.norm", {"rms", "layer"}, FIELD(model.norm), "normalisation"),
      B("model.tie_embeddings", FIELD(model.tie_embeddings), "share the token embedding with the LM head"),
      I("model.max_seq_len", 1, 1 << 20, FIELD(model.max_seq_len), "longest context the model supports"),
      B("model.match_params", FIELD(model.match_params), "size the MLP so every attention matches MHA's parameter count"),
      I("model.kv_share", 1, 1024, FIELD(model.kv_share),
        "cross-layer KV sharing (CLA): the first of every N layers computes the cached state, the others read it"),
      E("attention.kind", attention_kinds(), FIELD(model.attention.kind), "attention design (the variants: config/attention_list.h)"),
      // The same names as model::cache_formats() (this library has no LibTorch; a unit test keeps them equal).
      E("attention.cache_dtype", {"fp32", "bf16", "fp16", "int8", "fp8_e4m3"}, FIELD(model.attention.cache_dtype),
        "KV-cache storage; int8 and fp8_e4m3 add an fp16 scale per token per head"),
      E("attention.backend", {"auto", "math", "sdpa"}, FIELD(model.attention.backend), "inner attention kernel"),
      E("position.kind", {"none", "learned", "alibi", "rope"}, FIELD(model.position.kind), "position encoding"),
      R("position.theta", 1, kBig, false, FIELD(model.position.theta), "RoPE base"),
      R("position.fraction", 0, 1, true, FIELD(model.position.fraction), "share of head dims that rotate (partial RoPE)"),
      E("position.dims", {"first", "high", "low", "uniform"}, FIELD(model.position.dims), "partial RoPE: first dims (NeoX) or which frequencies keep it (MHA2MLA)"),
      E("position.scaling.kind", {"none", "linear", "ntk", "yarn"}, FIELD(model.position.scaling.kind), "RoPE context extension"),
      R("position.scaling.factor", 1, 1e6, false, FIELD(model.position.scaling.factor), "context extension factor"),
      I("position.scaling.original_max_len", 0, 1 << 24, FIELD(model.position.scaling.original_max_len), "pre-extension context; 0: model.max_seq_len"),
      R("position.scaling.beta_fast", 0, 1e6, false, FIELD(model.position.scaling.beta_fast), "YaRN ramp upper bound (rotations)"),
      R("position.scaling.beta_slow", 0, 1e6, false, FIELD(model.position.scaling.beta_slow), "YaRN ramp lower bound (rotations)"),
      R("position.scaling.mscale", 0, 1e3, false, FIELD(model.position.scaling.mscale), "YaRN attention temperature"),
      R("position.scaling.mscale_all_dim", 0, 1e3, false, FIELD(model.position.scaling.mscale_all_dim), "YaRN temperature (all dims)"),
      E("data.kind", {"kjv", "text", "synthetic"}, FIELD(data.kind), "corpus"),
      S("data.path", FIELD(data.path), "text: the UTF-8 file to train on"),
      E("data.tokenizer", {"byte", "char", "sentencepiece"}, FIELD(data.tokenizer), "tokenizer"),
      I("data.vocab_size", 0, 1 << 22, FIELD(data.vocab_size), "sentencepiece or synthetic vocabulary size"),
      R("data.val_fraction", 0, 0.5, true, FIELD(data.val_fraction), "tail of the corpus held out for validation"),
      E("data.task", {"mqar", "passkey"}, FIELD(data.task), "synthetic task (docs/evaluation.md)"),
      I("data.num_pairs", 1, 1 << 20, FIELD(data.num_pairs), "mqar: key-value pairs per sequence"),
      I("data.num_queries", 1, 1 << 20, FIELD(data.num_queries), "mqar: keys queried again (<= num_pairs)"),
      R("data.power_a", 0, 1, true, FIELD(data.power_a), "mqar: query-gap power law p(g) ~ g^(a-1); 1 is uniform"),
      I("data.passkey_digits", 1, 64, FIELD(data.passkey_digits), "passkey: digits in the key"),
      S("data.dir", FIELD(data.dir), "where prepared corpora live"),
      R("optim.lr", 0, 10, true, FIELD(optim.lr), "peak learning rate"),
      R("optim.min_lr", 0, 10, false, FIELD(optim.min_lr), "final learning rate"),
      R("optim.weight_decay", 0, 10, false, FIELD(optim.weight_decay), "AdamW decoupled weight decay"),
      {"optim.betas", KeyType::FloatPair, 0, 1, false, {}, "AdamW [beta1, beta2]", FIELD(optim.beta1), FIELD(optim.beta2)},
      R("optim.eps", 0, 1, true, FIELD(optim.eps), "AdamW epsilon"),
      I("optim.warmup_steps", 0, kBig, FIELD(optim.warmup_steps), "linear warmup steps"),
      E("optim.schedule", {"cosine", "wsd", "constant"}, FIELD(optim.schedule), "learning-rate schedule"),
      R("optim.grad_clip", 0, 1e6, false, FIELD(optim.grad_clip), "gradient norm clip; 0 disables"),
      B("optim.fused", FIELD(optim.fused), "fused AdamW step (ATen's _fused_adamw_); false: the per-parameter reference"),
      I("train.steps", 0, kBig, FIELD(train.steps), "optimizer steps; 0 only with train.init_from (evaluate a converted model)"),
      I("train.batch_size", 1, 1 << 20, FIELD(train.batch_size), "sequences per micro-batch"),
      I("train.seq_len", 1, 1 << 20, FIELD(train.seq_len), "tokens per training sequence"),
      I("train.grad_accum", 1, 1 << 16, FIELD(train.grad_accum), "micro-batches per step"),
      E("train.device", {"auto", "cpu", "cuda"}, FIELD(train.device), "where to train"),
      E("train.dtype", {"fp32", "bf16"}, FIELD(train.dtype), "compute dtype (bf16: mixed precision)"),
      I("train.eval_every", 0, kBig, FIELD(train.eval_every), "steps between evaluations; 0: only at the end"),
      I("train.eval_batches", 1, 1 << 20, FIELD(train.eval_batches), "validation batches per evaluation"),
      I("train.checkpoint_every", 0, kBig, FIELD(train.checkpoint_every), "steps between checkpoints; 0: only at the end"),
      I("train.keep_checkpoints", 1, 1 << 16, FIELD(train.keep_checkpoints), "checkpoints kept; with 2+ a damaged newest falls back"),
      I("train.log_every", 1, kBig, FIELD(train.log_every), "steps between log lines"),
      B("train.cuda_graph", FIELD(train.cuda_graph), "capture the training step in a CUDA graph"),
      I("train.threads", 0, 1024, FIELD(train.threads), "CPU intra-op threads; 0: LibTorch's default"),
      R("train.peak_tflops", 0, 1e6, false, FIELD(train.peak_tflops), "device peak TFLOP/s for MFU; 0: from the device table"),
      S("train.init_from", FIELD(train.init_from),
        "a trained run directory to start from, its weights converted to this attention (attnlab convert); '': random init"),
  };
}
#undef FIELD

std::string number(double v) { return fmt::format("{}", v); }

std::string describe(const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null: return "null";
    case Node::Kind::Scalar: return n.quoted ? "the string '" + n.value + "'" : "'" + n.value + "'";
    case Node::Kind::Sequence: return "a list " + to_flow(n);
    case Node::Kind::Map: return "a mapping";
  }
  return "";
}

bool in_range(const KeySpec& s, double v) {
  if (std::isnan(v)) return false;
  return (s.min_open ? v > s.min : v >= s.min) && v <= s.max;
}

// Sets one key; returns an error message or "".
std::string assign(const KeySpec& s, const Node& n, RunConfig& cfg) {
  const std::string want = "expected " + s.expectation() + ", got " + describe(n);
  auto number_of = [&](const Node& x) -> std::optional<double> {
    if (!x.is_scalar() || x.quoted) return std::nullopt;
    return parse_float(x.value);
  };
  switch (s.type) {
    case KeyType::Int: {
      if (!n.is_scalar() || n.quoted) return want;
      auto v = parse_int(n.value);
      if (!v || !in_range(s, static_cast<double>(*v))) return want;
      *static_cast<int64_t*>(s.field(cfg)) = *v;
      return "";
    }
    case KeyType::Float: {
      auto v = number_of(n);
      if (!v || !in_range(s, *v)) return want;
      *static_cast<double*>(s.field(cfg)) = *v;
      return "";
    }
    case KeyType::Bool: {
      if (!n.is_scalar() || n.quoted || !parse_bool(n.value)) return want;
      *static_cast<bool*>(s.field(cfg)) = *parse_bool(n.value);
      return "";
    }
    case KeyType::String: {
      if (n.is_null()) {
        static_cast<std::string*>(s.field(cfg))->clear();
        return "";
      }
      if (!n.is_scalar()) return want;
      *static_cast<std::string*>(s.field(cfg)) = n.value;
      return "";
    }
    case KeyType::Enum: {
      if (!n.is_scalar()) return want;
      for (const auto& o : s.options) {
        if (o == n.value) {
          *static_cast<std::string*>(s.field(cfg)) = o;
          return "";
        }
      }
      return want + did_you_mean(n.value, s.options);
    }
    case KeyType::FloatPair: {
      if (!n.is_sequence() || n.items.size() != 2) return want;
      auto a = number_of(n.items[0]);
      auto b = number_of(n.items[1]);
      if (!a || !b || !in_range(s, *a) || !in_range(s, *b) || *a >= 1 || *b >= 1) return want;
      *static_cast<double*>(s.field(cfg)) = *a;
      *static_cast<double*>(s.field2(cfg)) = *b;
      return "";
    }
  }
  return want;
}

bool is_section(const std::string& path) {
  for (const auto& s : schema())
    if (s.key.size() > path.size() && s.key.compare(0, path.size(), path) == 0 && s.key[path.size()] == '.')
      return true;
  return false;
}

void walk(const Node& n, const std::string& path, RunConfig& cfg, std::vector<Diagnostic>& problems,
          const std::set<std::string>& skip) {
  if (n.is_map() && (path.empty() || is_section(path))) {
    for (const auto& [k, v] : n.entries) walk(v, join_path(path, k), cfg, problems, skip);
    return;
  }
  if (skip.count(path)) return;
  const KeySpec* spec = find_key(path);
  if (!spec) {
    if (is_section(path)) {
      problems.push_back({path, n.origin, "expected a mapping of keys (a config section), got " + describe(n)});
    } else {
      problems.push_back({path, n.origin, "unknown key" + suggest_key(path)});
    }
    return;
  }
  if (n.is_missing()) {
    problems.push_back({path, n.origin, "is mandatory (???" ") and was not set; set it with " + path + "=VALUE"});
    return;
  }
  std::string err = assign(*spec, n, cfg);
  if (!err.empty()) problems.push_back({path, n.origin, err});
}

}  // namespace

std::string KeySpec::expectation() const {
  auto range = [&] {
    return fmt::format("{}{}, {}]", min_open ? "(" : "[", number(min), number(max));
  };
  switch (type) {
    case KeyType::Int: return "an integer in " + range();
    case KeyType::Float: return "a number in " + range();
    case KeyType::Bool: return "true or false";
    case KeyType::String: return "a string";
    case KeyType::Enum: {
      std::string s = "one of ";
      for (size_t i = 0; i < options.size(); ++i) s += (i ? ", " : "") + options[i];
      return s;
    }
    case KeyType::FloatPair: return "a list of two numbers in [0, 1)";
  }
  return "";
}

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> table = make_schema();
  return table;
}

const KeySpec* find_key(const std::string& key) {
  for (const auto& s : schema())
    if (s.key == key) return &s;
  return nullptr;
}

std::vector<std::string> schema_keys() {
  std::vector<std::string> keys;
  for (const auto& s : schema()) keys.push_back(s.key);
  return keys;
}

Node schema_defaults() { return to_tree(RunConfig{}, "built-in default"); }

Node to_tree(const RunConfig& config, const std::string& origin) {
  RunConfig cfg = config;  // the accessors take a mutable RunConfig; they only read here
  Node root = Node::map(origin);
  for (const auto& s : schema()) {
    Node v;
    switch (s.type) {
      case KeyType::Int: v = Node::scalar(std::to_string(*static_cast<int64_t*>(s.field(cfg))), origin); break;
      case KeyType::Float: v = Node::scalar(number(*static_cast<double*>(s.field(cfg))), origin); break;
      case KeyType::Bool: v = Node::scalar(*static_cast<bool*>(s.field(cfg)) ? "true" : "false", origin); break;
      case KeyType::String:
      case KeyType::Enum: {
        const auto& str = *static_cast<std::string*>(s.field(cfg));
        v = str.empty() ? Node::null(origin) : Node::scalar(str, origin, plain_reads_as_non_string(str));
        break;
      }
      case KeyType::FloatPair:
        v = Node::sequence(origin);
        v.items.push_back(Node::scalar(number(*static_cast<double*>(s.field(cfg))), origin));
        v.items.push_back(Node::scalar(number(*static_cast<double*>(s.field2(cfg))), origin));
        break;
    }
    root.set_path(s.key, std::move(v));
  }
  return root;
}

std::string suggest_key(const std::string& key) {
  auto keys = schema_keys();
  // The right name in the wrong section ("model.kv_rank") first: a near
  // spelling of the whole key (model.kv_share) is the worse guess then.
  auto dot = key.rfind('.');
  std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
  std::vector<std::string> same_leaf, close_leaf;
  for (const auto& k : keys) {
    auto d = k.rfind('.');
    std::string kleaf = d == std::string::npos ? k : k.substr(d + 1);
    if (k == key) continue;
    if (kleaf == leaf) same_leaf.push_back(k);
    else if (edit_distance(kleaf, leaf) <= (leaf.size() > 5 ? 2u : 1u)) close_leaf.push_back(k);
  }
  if (same_leaf.size() == 1) return " (did you mean '" + same_leaf.front() + "'?)";
  if (auto n = nearest(key, keys)) return " (did you mean '" + *n + "'?)";
  // Else a typo in the last segment.
  if (same_leaf.empty()) same_leaf = close_leaf;
  if (same_leaf.size() == 1) return " (did you mean '" + same_leaf.front() + "'?)";
  if (!same_leaf.empty()) {
    std::string s = " (did you mean one of ";
    for (size_t i = 0; i < same_leaf.size(); ++i) s += (i ? ", '" : "'") + same_leaf[i] + "'";
    return s + "?)";
  }
  return "";
}

RunConfig to_run_config(const Node& tree, std::vector<Diagnostic>& problems, const std::set<std::string>& skip) {
  RunConfig cfg;
  walk(tree, "", cfg, problems, skip);
  return cfg;
}

std::vector<std::string> differing_keys(const RunConfig& a, const RunConfig& b, const std::set<std::string>& ignore) {
  // The accessors take a mutable RunConfig; they only point into it here.
  RunConfig x = a, y = b;
  std::vector<std::string> out;
  for (const auto& s : schema()) {
    if (ignore.contains(s.key)) continue;
    bool same = true;
    switch (s.type) {
      case KeyType::Int:
        same = *static_cast<int64_t*>(s.field(x)) == *static_cast<int64_t*>(s.field(y));
        break;
      case KeyType::Float:
        same = *static_cast<double*>(s.field(x)) == *static_cast<double*>(s.field(y));
        break;
      case KeyType::FloatPair:
        same = *static_cast<double*>(s.field(x)) == *static_cast<double*>(s.field(y)) &&
               *static_cast<double*>(s.field2(x)) == *static_cast<double*>(s.field2(y));
        break;
      case KeyType::Bool:
        same = *static_cast<bool*>(s.field(x)) == *static_cast<bool*>(s.field(y));
        break;
      case KeyType::String:
      case KeyType::Enum: {
        const auto& u = *static_cast<std::string*>(s.field(x));
        const auto& v = *static_cast<std::string*>(s.field(y));
        const bool is_path = s.key == "data.path" || s.key == "data.dir" || s.key == "run.root";
        same = is_path ? std::filesystem::path(u).lexically_normal() == std::filesystem::path(v).lexically_normal()
                       : u == v;
        break;
      }
    }
    if (!same) out.push_back(s.key);
  }
  return out;
}

std::string format_schema() {
  std::string out;
  RunConfig cfg;
  Node defaults = schema_defaults();
  for (const auto& s : schema()) {
    const Node* d = defaults.at_path(s.key);
    out += fmt::format("  {:<34} {:<40} default {:<10} {}\n", s.key, s.expectation(), d ? to_flow(*d) : "", s.doc);
  }
  return out;
}

}  // namespace attnlab::config
