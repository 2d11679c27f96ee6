// Formatting of user-facing errors.
#include "core/error.h"

#include <fmt/format.h>

namespace attnlab {

std::string Diagnostic::to_string() const {
  std::string out;
  if (!origin.empty()) out += origin + ": ";
  if (!key.empty()) out += "'" + key + "': ";
  out += message;
  return out;
}

namespace {
std::string join(const std::vector<Diagnostic>& diagnostics) {
  if (diagnostics.size() == 1) return diagnostics.front().to_string();
  std::string out = fmt::format("{} problems:", diagnostics.size());
  for (const auto& d : diagnostics) out += "\n  " + d.to_string();
  return out;
}
}  // namespace

UserError::UserError(std::string message)
    : Error(message), diagnostics_{Diagnostic{"", "", std::move(message)}} {}

UserError::UserError(std::vector<Diagnostic> diagnostics)
    : Error(join(diagnostics)), diagnostics_(std::move(diagnostics)) {}

void throw_user_error(std::string key, std::string origin, std::string message) {
  throw UserError(std::vector<Diagnostic>{{std::move(key), std::move(origin), std::move(message)}});
}

}  // namespace attnlab
