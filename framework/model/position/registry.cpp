// The explicit table of position encodings: adding one is a file plus a line here.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <functional>
#include <utility>

#include "core/error.h"
#include "model/position/rope.h"
#include "model/position/simple.h"

namespace attnlab::model {

namespace {
using Factory = std::function<PositionPtr(const PositionOptions&)>;
const std::vector<std::pair<std::string, Factory>>& table() {
  static const std::vector<std::pair<std::string, Factory>> t = {
      {"none", [](const PositionOptions&) { return std::make_shared<NoPosition>(); }},
      {"learned", [](const PositionOptions& o) { return std::make_shared<LearnedPosition>(o); }},
      {"alibi", [](const PositionOptions&) { return std::make_shared<Alibi>(); }},
      {"rope", [](const PositionOptions& o) { return std::make_shared<Rope>(o); }},
  };
  return t;
}
}  // namespace

PositionPtr make_position(const PositionOptions& options) {
  for (const auto& [name, make] : table())
    if (name == options.config.kind) return make(options);
  throw_user_error("position.kind", "",
                   fmt::format("'{}' is not one of {}", options.config.kind, fmt::join(position_kinds(), ", ")));
}

std::vector<std::string> position_kinds() {
  std::vector<std::string> names;
  for (const auto& entry : table()) names.push_back(entry.first);
  return names;
}

}  // namespace attnlab::model
