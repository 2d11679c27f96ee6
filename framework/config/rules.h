// Cross-key rules: shapes and combinations that are each valid alone but
// impossible together (d_model % n_heads, n_heads % n_kv_heads, odd rotary
// dims, absorbed decode with coupled RoPE, missing data files, run names).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "config/node.h"
#include "config/run_config.h"
#include "core/error.h"

namespace attnlab::config {

// What a rule sees: each key's origin, which keys were already reported, and
// where to report. Attention variants write their own rules against it
// (model/attention/registry.h).
class RuleChecker {
 public:
  RuleChecker(const Node& tree, const std::set<std::string>& invalid, std::vector<Diagnostic>& problems)
      : tree_(tree), invalid_(invalid), problems_(problems) {}

  // True when none of `keys` was already reported invalid.
  bool ok(std::initializer_list<std::string> keys) const;
  // Reports `key` with `message`; `related`: the rule's other keys, whose
  // origins the message lists.
  void fail(const std::string& key, const std::string& message, const std::vector<std::string>& related = {});
  // Where a key's value came from ("attention/mla.yaml:3:10", "override #2", ...).
  std::string origin(const std::string& key) const;

 private:
  const Node& tree_;
  const std::set<std::string>& invalid_;
  std::vector<Diagnostic>& problems_;
};

// Whether fraction x width rotary dims is a whole, even number of at least 2
// (RoPE rotates pairs); the rule behind every position.fraction check.
bool rotates_pairs(double rotary_dims);

// Appends a diagnostic for every broken rule. Rules that involve a key in
// `invalid` (already reported) are skipped, so one mistake gives one error.
// `tree` supplies each key's origin.
void check_rules(const RunConfig& cfg, const Node& tree, const std::set<std::string>& invalid,
                 std::vector<Diagnostic>& problems);

// Whether a run name is safe as one directory name under the results root.
bool valid_run_name(const std::string& name);

}  // namespace attnlab::config
