// The explicit table of attention variants (registry.cpp). Adding a variant is
// one new file plus one line in the table.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "model/attention/attention.h"

namespace attnlab::model {

struct AttentionEntry {
  std::string kind;                                           // attention.kind
  std::function<AttentionPtr(const ModelConfig&)> make;       // builds one layer
  // The cache layout from the config alone, without allocating weights (the
  // KV report sizes DeepSeek-V2, whose layers would take gigabytes).
  std::function<CacheLayout(const ModelConfig&)> layout;
};

const std::vector<AttentionEntry>& attention_registry();
const AttentionEntry& attention_entry(const std::string& kind);  // UserError naming attention.kind
AttentionPtr make_attention(const ModelConfig& config);
std::vector<std::string> attention_kinds();

}  // namespace attnlab::model
