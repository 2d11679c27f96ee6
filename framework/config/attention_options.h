// The configuration half of the attention registry (see attention_list.h):
// per variant, the attention.<key>s it reads with their type, range, default
// and doc, its cross-key rules, and what RoPE rotates. No LibTorch here: the
// schema and the rules ask this, and the fuzz build has no LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/run_config.h"

namespace attnlab::config {

class RuleChecker;

// One attention.<key> a variant reads. Several variants may declare the same
// key (MLA and GLA share their latent widths); their declarations must agree
// on type, range and default (a test checks), and their docs are joined.
struct OptionSpec {
  std::string key;                    // "kv_rank" (YAML: attention.kv_rank)
  bool is_enum = false;
  int64_t min = 0, max = 0;           // integers: inclusive range
  int64_t default_int = 0;            // by convention 0 means "derived by the variant"
  std::vector<std::string> options;   // enums
  std::string default_word;           // enums
  std::string doc;                    // what the key means for this variant

  static OptionSpec integer(std::string key, int64_t min, int64_t max, int64_t default_value, std::string doc);
  static OptionSpec choice(std::string key, std::vector<std::string> options, std::string default_value,
                           std::string doc);
};

// What RoPE rotates per head, before position.fraction: the shared position
// rule checks that the fraction leaves whole pairs of it.
struct RotaryWidth {
  int64_t width = 0;                  // 0: nothing rotates (or the variant's own rules report why)
  std::string what;                   // "the head dim (32)", for the message
  std::vector<std::string> keys;      // the keys that set the width, listed with their origins
};

struct AttentionKeys {
  std::string kind;                   // attention.kind
  std::string summary;                // one line: what the design is and caches
  std::vector<OptionSpec> options;    // beyond kind, cache_dtype and backend, which every variant has
  std::function<void(const RunConfig&, RuleChecker&)> check;  // the variant's cross-key rules
  std::function<RotaryWidth(const ModelConfig&)> rotary;

  bool declares(const std::string& key) const;
  // attention.decode's options when the variant has more than one decode path, else empty.
  std::vector<std::string> decode_modes() const;
};

const std::vector<AttentionKeys>& attention_keys_registry();
const AttentionKeys& attention_keys(const std::string& kind);  // UserError naming attention.kind
std::vector<std::string> attention_kinds();

// Every attention.<key> of every variant, one per key: the first
// declaration's type, range and default, with the docs of all declarers
// joined ("mla: ...; gla: ..."). Declarations that disagree are an Error.
const std::vector<OptionSpec>& attention_options();
const OptionSpec& declared_option(const std::string& key);  // an Error when no variant declares it

}  // namespace attnlab::config
