// The model half of the attention registry (the list: config/attention_list.h;
// the configuration half, keys and rules: config/attention_options.h). An
// entry is what the model side knows about a variant: how to build a layer,
// its cache layout, parameter count and cache formula from the config alone,
// its per-head widths, its rows in `attnlab kv` and the configurations its
// property tests run. The kv report, match_params, MFU, the bench and the
// tests ask the registry and never name a kind.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/attention_options.h"
#include "model/attention/attention.h"

namespace attnlab::model {

// Per query head: the width q·k contracts over and the value width.
struct HeadDims {
  int64_t qk = 0;
  int64_t v = 0;
};

// One labelled configuration for `attnlab kv` and the property tests.
struct VariantConfig {
  std::string label;                  // "gqa (K=8)", "mla absorbed", "mla/naive/coupled/q0"
  ModelConfig config;
};

struct AttentionVariant {
  std::string kind;                   // attention.kind
  // A layer; reads_shared: not the first of its model.kv_share group, so it
  // has no weights for the state it caches and reads its group's.
  std::function<AttentionPtr(const ModelConfig&, bool reads_shared)> make;
  // The cache layout per token per layer (for attention.decode where the
  // variant has decode paths), without allocating weights: the kv report
  // sizes DeepSeek-V2, whose layers would take gigabytes.
  std::function<CacheLayout(const ModelConfig&)> layout;
  // What a layer that reads its group's state caches of its own: nothing
  // where the cache holds the state as it is; its own up-projected k and v
  // in a naive decode mode, since they come from its own W_UK and W_UV.
  std::function<CacheLayout(const ModelConfig&)> reader_layout;
  std::function<int64_t(const ModelConfig&)> params;   // per layer, closed form (a test counts the built layer)
  // The parameters that compute the state (wk and wv; MLA's W_DKV, kv_norm
  // and rotary key): what a reading layer lacks of `params`.
  std::function<int64_t(const ModelConfig&)> state_params;
  // Elements cached per token per layer by the paper's formula (2·K·E for
  // grouped heads, d_c + d_r for absorbed MLA), written independently of
  // `layout`: `attnlab bench kv` and the tests hold the two and the bytes a
  // real cache allocates equal.
  std::function<int64_t(const ModelConfig&)> cache_elements;
  std::function<HeadDims(const ModelConfig&)> head_dims;
  // Its rows in `attnlab kv` at the shape of `config` (whose kind may be another variant's).
  std::function<std::vector<VariantConfig>(const ModelConfig&)> kv_rows;
  // The configurations the property tests run (decode paths, modes) at the shape of `base`.
  std::function<std::vector<VariantConfig>(const ModelConfig&)> test_configs;

  // The configuration half: keys, rules, summary (config/attention_options.h).
  const config::AttentionKeys& keys() const { return config::attention_keys(kind); }
  bool declares(const std::string& key) const { return keys().declares(key); }
  std::vector<std::string> decode_modes() const { return keys().decode_modes(); }
};

const std::vector<AttentionVariant>& attention_registry();
const AttentionVariant& attention_entry(const std::string& kind);  // UserError naming attention.kind
AttentionPtr make_attention(const ModelConfig& config, bool reads_shared = false);

// model.kv_share: whether layer i reads its group's state (it is not the
// first of its group of kv_share layers).
bool reads_shared(const ModelConfig& config, int64_t layer);
// Every layer's cache layout and the attention parameters of all layers,
// from the config alone (the model's own agree; a test holds them equal).
std::vector<CacheLayout> layer_layouts(const ModelConfig& config);
int64_t attention_params(const ModelConfig& config);
std::vector<std::string> attention_kinds();

// `config` with attention.kind set to `kind`, every other option kept (the
// kv report and match_params compare variants at one shape).
ModelConfig with_kind(const ModelConfig& config, const std::string& kind);

}  // namespace attnlab::model
