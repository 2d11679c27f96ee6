// The model half of the attention registry, built from the one list in
// config/attention_list.h. No static self-registration: a static library
// drops registrars nothing references.
#include "model/attention/registry.h"

#include <fmt/format.h>

#include "config/attention_list.h"
#include "core/error.h"

namespace attnlab::model {

#define ATTNLAB_DECLARE(kind) AttentionVariant kind##_variant();
ATTNLAB_ATTENTION_VARIANTS(ATTNLAB_DECLARE)
#undef ATTNLAB_DECLARE

const std::vector<AttentionVariant>& attention_registry() {
#define ATTNLAB_ENTRY(kind) kind##_variant(),
  static const std::vector<AttentionVariant> table = {ATTNLAB_ATTENTION_VARIANTS(ATTNLAB_ENTRY)};
#undef ATTNLAB_ENTRY
  return table;
}

const AttentionVariant& attention_entry(const std::string& kind) {
  for (const auto& e : attention_registry())
    if (e.kind == kind) return e;
  (void)config::attention_keys(kind);  // throws the UserError naming attention.kind and the kinds
  throw Error(fmt::format("attention '{}' has keys but no model entry", kind));
}

AttentionPtr make_attention(const ModelConfig& config, bool reads_shared) {
  return attention_entry(config.attention.kind).make(config, reads_shared);
}

bool reads_shared(const ModelConfig& config, int64_t layer) { return config.kv_share > 1 && layer % config.kv_share != 0; }

std::vector<CacheLayout> layer_layouts(const ModelConfig& config) {
  const auto& entry = attention_entry(config.attention.kind);
  std::vector<CacheLayout> out;
  for (int64_t i = 0; i < config.n_layers; ++i)
    out.push_back(reads_shared(config, i) ? entry.reader_layout(config) : entry.layout(config));
  return out;
}

int64_t attention_params(const ModelConfig& config) {
  const auto& entry = attention_entry(config.attention.kind);
  int64_t n = 0;
  for (int64_t i = 0; i < config.n_layers; ++i)
    n += entry.params(config) - (reads_shared(config, i) ? entry.state_params(config) : 0);
  return n;
}

std::vector<std::string> attention_kinds() { return config::attention_kinds(); }

ModelConfig with_kind(const ModelConfig& config, const std::string& kind) {
  ModelConfig c = config;
  c.attention.kind = kind;
  return c;
}

}  // namespace attnlab::model
