// libFuzzer target: the override parser. Any input must either parse or raise
// a UserError; a parsed single value must survive format_override and parse
// back to the same value (the multirun planner relies on that).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/overrides.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnlab;
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    config::Override o = config::parse_override(text, 1);
    if (o.value && o.op != config::OverrideOp::Delete) {
      std::string again = config::format_override(o.op, o.key, *o.value);
      config::Override back = config::parse_override(again, 1);
      if (!back.value || config::to_flow(*back.value) != config::to_flow(*o.value)) std::abort();
    }
    for (const auto& v : o.sweep) (void)config::to_flow(v);
  } catch (const UserError&) {
  }
  return 0;
}
