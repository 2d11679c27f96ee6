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

AttentionPtr make_attention(const ModelConfig& config) { return attention_entry(config.attention.kind).make(config); }

std::vector<std::string> attention_kinds() { return config::attention_kinds(); }

ModelConfig with_kind(const ModelConfig& config, const std::string& kind) {
  ModelConfig c = config;
  c.attention.kind = kind;
  return c;
}

}  // namespace attnlab::model
