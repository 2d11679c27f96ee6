// The typed schema: every user-settable key of RunConfig with its type, its
// range or allowed values, and a one-line doc. Converting a resolved tree into
// a RunConfig goes through it, so every key is checked the same way.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "config/node.h"
#include "config/run_config.h"
#include "core/error.h"

namespace attnlab::config {

enum class KeyType { Int, Float, Bool, String, Enum, FloatPair };

struct KeySpec {
  std::string key;                   // "model.n_heads" (YAML keys: attention.* and position.* are top level)
  KeyType type;
  double min = 0, max = 0;           // Int, Float, FloatPair: inclusive range ...
  bool min_open = false;             // ... or open at the bottom: (min, max]
  std::vector<std::string> options;  // Enum
  std::string doc;
  std::function<void*(RunConfig&)> field;   // the RunConfig member
  std::function<void*(RunConfig&)> field2;  // FloatPair: the second member

  // "an integer in [1, 1024]", "one of mha, mqa, gqa, mla", ...
  std::string expectation() const;
};

const std::vector<KeySpec>& schema();
const KeySpec* find_key(const std::string& key);
std::vector<std::string> schema_keys();

// The built-in defaults (RunConfig's) as a tree, each origin "built-in default".
Node schema_defaults();
// Any RunConfig as a tree of its schema keys (to_run_config's inverse).
Node to_tree(const RunConfig& config, const std::string& origin);

// The nearest valid key to a misspelt one, as " (did you mean 'x'?)" or "".
std::string suggest_key(const std::string& key);

// Converts a fully interpolated tree into a RunConfig. Appends a diagnostic
// for every unknown key, wrong type, out-of-range value and unset `???`.
// Keys in `skip` (already reported, e.g. a failed interpolation) are left out.
RunConfig to_run_config(const Node& tree, std::vector<Diagnostic>& problems,
                        const std::set<std::string>& skip = {});

// The schema keys whose values differ between two configs, compared as
// values: numbers as numbers (1e-3 == 0.001), paths lexically normalised
// (a//b == a/b); keys in `ignore` are skipped (run.root: a results folder that
// moved holds the same runs).
std::vector<std::string> differing_keys(const RunConfig& a, const RunConfig& b,
                                        const std::set<std::string>& ignore = {});

// One line per key: key, type/range, default, doc (for docs and --help).
std::string format_schema();

}  // namespace attnlab::config
