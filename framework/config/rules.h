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

// Appends a diagnostic for every broken rule. Rules that involve a key in
// `invalid` (already reported) are skipped, so one mistake gives one error.
// `tree` supplies each key's origin.
void check_rules(const RunConfig& cfg, const Node& tree, const std::set<std::string>& invalid,
                 std::vector<Diagnostic>& problems);

// Whether a run name is safe as one directory name under the results root.
bool valid_run_name(const std::string& name);

}  // namespace attnlab::config
