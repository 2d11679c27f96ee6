// The attention variants, one line each. No static self-registration: a
// static library drops registrars nothing references.
#include "model/attention/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "model/attention/grouped.h"
#include "model/attention/latent.h"

namespace attnlab::model {

namespace {
AttentionEntry grouped(const std::string& kind) {
  return {kind, [](const ModelConfig& c) -> AttentionPtr { return std::make_shared<GroupedAttention>(GroupedOptions::from(c)); },
          [](const ModelConfig& c) { return GroupedAttention::layout(GroupedOptions::from(c)); }};
}
}  // namespace

const std::vector<AttentionEntry>& attention_registry() {
  static const std::vector<AttentionEntry> table = {
      grouped("mha"),
      grouped("gqa"),
      grouped("mqa"),
      {"mla", [](const ModelConfig& c) -> AttentionPtr { return std::make_shared<LatentAttention>(LatentOptions::from(c)); },
       [](const ModelConfig& c) { return LatentAttention::layout(LatentOptions::from(c)); }},
  };
  return table;
}

const AttentionEntry& attention_entry(const std::string& kind) {
  for (const auto& e : attention_registry())
    if (e.kind == kind) return e;
  throw_user_error("attention.kind", "", fmt::format("'{}' is not one of {}", kind, fmt::join(attention_kinds(), ", ")));
}

AttentionPtr make_attention(const ModelConfig& config) { return attention_entry(config.attention.kind).make(config); }

std::vector<std::string> attention_kinds() {
  std::vector<std::string> names;
  for (const auto& e : attention_registry()) names.push_back(e.kind);
  return names;
}

}  // namespace attnlab::model
