// The command-line override grammar (Hydra's, plus zip):
//   a.b=v  +a.b=v  ++a.b=v  ~a.b[=v]  group=option
//   values: 1_000, 3.5, inf, nan, true, null, 'quoted', [1,2], {k: v}, ${interp}
//   sweeps: a=1,2,3  a=choice(x,y)  a=range(0,10,2)  group=glob(*)  zip(a=[..],b=[..])
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/node.h"

namespace attnlab::config {

enum class OverrideOp { Set, Add, Force, Delete };

// One paired dimension of a zip(...) sweep.
struct ZipDim {
  OverrideOp op = OverrideOp::Set;
  std::string key;
  std::vector<Node> values;
};

struct Override {
  int index = 0;          // 1-based position among the overrides
  std::string text;       // as given
  std::string origin;     // "override #2 'model.n_heads=8'"
  OverrideOp op = OverrideOp::Set;
  std::string key;        // dotted key or group name (empty for zip)
  std::optional<Node> value;           // a single value (Delete: only when "~a=v")
  std::vector<Node> sweep;             // a=1,2 / choice / range: the values
  std::optional<std::vector<std::string>> glob;  // group=glob(p1,p2): name patterns
  std::vector<ZipDim> zip;             // zip(a=[..],b=[..])

  bool is_sweep() const { return !sweep.empty() || glob.has_value() || !zip.empty(); }
};

// "override #N 'text'"
std::string override_origin(int index, const std::string& text);

// Parses one override. Throws UserError whose message points a caret at the
// column where parsing failed.
Override parse_override(const std::string& text, int index);

// Parses every override, reporting all malformed ones together.
std::vector<Override> parse_overrides(const std::vector<std::string>& texts);

// The override text that sets `key` to `value` with `op` (used to write the
// jobs of a sweep).
std::string format_override(OverrideOp op, const std::string& key, const Node& value);

// Whether `name` matches a glob pattern with * and ?.
bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace attnlab::config
