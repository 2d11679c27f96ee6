// libFuzzer target: the override parser and compose(). The input is split into
// up to 8 overrides, one per line. Each must parse or raise a UserError; a
// parsed single value must survive format_override and parse back to the same
// value (multirun relies on that); and when all parse, composing them against
// the real configs/ must succeed or raise a UserError, never anything else.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "config/compose.h"
#include "config/overrides.h"
#include "core/error.h"

namespace {
// Returns whether `text` parsed.
bool check_round_trip(const std::string& text) {
  using namespace attnlab;
  try {
    config::Override o = config::parse_override(text, 1);
    if (o.value && o.op != config::OverrideOp::Delete) {
      std::string again = config::format_override(o.op, o.key, *o.value);
      config::Override back = config::parse_override(again, 1);
      if (!back.value || config::to_flow(*back.value) != config::to_flow(*o.value)) std::abort();
    }
    for (const auto& v : o.sweep) (void)config::to_flow(v);
    return true;
  } catch (const UserError&) {
    return false;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnlab;
  std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  size_t start = 0;
  while (overrides.size() < 8 && start <= input.size()) {
    size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    overrides.push_back(input.substr(start, end - start));
    start = end + 1;
  }
  bool all_parsed = true;
  for (const auto& o : overrides) all_parsed = check_round_trip(o) && all_parsed;
  // Composing reads the config files (milliseconds): only for inputs that parse.
  if (!all_parsed) return 0;
  config::ComposeRequest request;
  request.config_dir = std::string(ATTNLAB_SOURCE_DIR) + "/configs";
  request.overrides = overrides;
  try {
    (void)config::compose(request);
  } catch (const UserError&) {
  }
  return 0;
}
