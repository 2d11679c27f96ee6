// The configuration half of the attention registry, and AttentionConfig's
// accessors, which fall back to the declared defaults.
#include "config/attention_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>

#include "config/attention_list.h"
#include "core/error.h"

namespace attnlab::config {

#define ATTNLAB_DECLARE(kind) AttentionKeys kind##_keys();
ATTNLAB_ATTENTION_VARIANTS(ATTNLAB_DECLARE)
#undef ATTNLAB_DECLARE

const std::vector<AttentionKeys>& attention_keys_registry() {
#define ATTNLAB_ENTRY(kind) kind##_keys(),
  static const std::vector<AttentionKeys> table = {ATTNLAB_ATTENTION_VARIANTS(ATTNLAB_ENTRY)};
#undef ATTNLAB_ENTRY
  return table;
}

OptionSpec OptionSpec::integer(std::string key, int64_t min, int64_t max, int64_t default_value, std::string doc) {
  OptionSpec s;
  s.key = std::move(key);
  s.min = min;
  s.max = max;
  s.default_int = default_value;
  s.doc = std::move(doc);
  return s;
}

OptionSpec OptionSpec::choice(std::string key, std::vector<std::string> options, std::string default_value,
                              std::string doc) {
  OptionSpec s;
  s.key = std::move(key);
  s.is_enum = true;
  s.options = std::move(options);
  s.default_word = std::move(default_value);
  s.doc = std::move(doc);
  return s;
}

bool AttentionKeys::declares(const std::string& key) const {
  return std::any_of(options.begin(), options.end(), [&](const OptionSpec& o) { return o.key == key; });
}

std::vector<std::string> AttentionKeys::decode_modes() const {
  for (const auto& o : options)
    if (o.key == "decode") return o.options;
  return {};
}

std::vector<std::string> attention_kinds() {
  std::vector<std::string> names;
  for (const auto& e : attention_keys_registry()) names.push_back(e.kind);
  return names;
}

const AttentionKeys& attention_keys(const std::string& kind) {
  for (const auto& e : attention_keys_registry())
    if (e.kind == kind) return e;
  throw_user_error("attention.kind", "", fmt::format("'{}' is not one of {}", kind, fmt::join(attention_kinds(), ", ")));
}

namespace {

bool same_declaration(const OptionSpec& a, const OptionSpec& b) {
  return a.is_enum == b.is_enum && a.min == b.min && a.max == b.max && a.default_int == b.default_int &&
         a.options == b.options && a.default_word == b.default_word;
}

std::vector<OptionSpec> merge_options() {
  std::vector<OptionSpec> out;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> docs;  // key -> (doc, "kind, kind")
  for (const auto& variant : attention_keys_registry()) {
    for (const auto& o : variant.options) {
      auto it = std::find_if(out.begin(), out.end(), [&](const OptionSpec& s) { return s.key == o.key; });
      if (it == out.end()) {
        out.push_back(o);
      } else if (!same_declaration(*it, o)) {
        throw Error(fmt::format("attention.{} is declared differently by {} than by an earlier variant (type, "
                                "range and default must agree)", o.key, variant.kind));
      }
      auto& by_doc = docs[o.key];
      auto same = std::find_if(by_doc.begin(), by_doc.end(), [&](const auto& d) { return d.first == o.doc; });
      if (same == by_doc.end()) by_doc.emplace_back(o.doc, variant.kind);
      else same->second += ", " + variant.kind;
    }
  }
  // "mha, mqa: key/value heads; ...; gqa: ...": each doc once, after the kinds that give it.
  for (auto& o : out) {
    o.doc.clear();
    for (const auto& [doc, kinds] : docs[o.key]) o.doc += (o.doc.empty() ? "" : "; ") + kinds + ": " + doc;
  }
  return out;
}

}  // namespace

const std::vector<OptionSpec>& attention_options() {
  static const std::vector<OptionSpec> merged = merge_options();
  return merged;
}

const OptionSpec& declared_option(const std::string& key) {
  static const std::map<std::string, OptionSpec> by_key = [] {
    std::map<std::string, OptionSpec> m;
    for (const auto& o : attention_options()) m.emplace(o.key, o);
    return m;
  }();
  auto it = by_key.find(key);
  if (it == by_key.end()) throw Error(fmt::format("attention.{} is declared by no attention variant", key));
  return it->second;
}

}  // namespace attnlab::config

namespace attnlab {

int64_t AttentionConfig::integer(const std::string& key) const {
  const auto& spec = config::declared_option(key);
  if (spec.is_enum) throw Error(fmt::format("attention.{} is a choice, not an integer", key));
  auto it = ints.find(key);
  return it != ints.end() ? it->second : spec.default_int;
}

const std::string& AttentionConfig::word(const std::string& key) const {
  const auto& spec = config::declared_option(key);
  if (!spec.is_enum) throw Error(fmt::format("attention.{} is an integer, not a choice", key));
  auto it = words.find(key);
  return it != words.end() ? it->second : spec.default_word;
}

AttentionConfig& AttentionConfig::set(const std::string& key, int64_t value) {
  (void)integer(key);  // declared, and an integer
  ints[key] = value;
  return *this;
}

AttentionConfig& AttentionConfig::set(const std::string& key, std::string value) {
  (void)word(key);
  words[key] = std::move(value);
  return *this;
}

}  // namespace attnlab
