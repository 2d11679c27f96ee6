// Failpoints (failpoint.h): parsed once from ATTNLAB_FAILPOINT; every armed
// point counts its hits.
#include "core/failpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace attnlab::failpoint {
namespace {

enum class Action { kKill, kEio, kEnospc };

struct Armed {
  std::string name;
  long at = 0;                  // fire at this hit (1-based)
  Action action = Action::kKill;
  std::atomic<long> hits{0};
};

// Parses the variable's value; throws UserError naming it.
std::vector<Armed*> parse(const char* value) {
  std::vector<Armed*> out;
  if (value == nullptr || *value == '\0') return out;
  auto bad = [&](const std::string& what) {
    throw_user_error(kEnvironment, "the environment",
                     fmt::format("'{}': {}; expected NAME:N:kill|eio|enospc[,...] with NAME one of {}", value, what,
                                 fmt::join(kNames, ", ")));
  };
  std::string all(value);
  size_t start = 0;
  while (start <= all.size()) {
    const size_t end = std::min(all.find(',', start), all.size());
    const std::string item = all.substr(start, end - start);
    const size_t c1 = item.find(':'), c2 = item.rfind(':');
    if (c1 == std::string::npos || c1 == c2) bad(fmt::format("'{}' is not NAME:N:ACTION", item));
    auto* armed = new Armed;  // lives for the process: hit() may run until exit
    armed->name = item.substr(0, c1);
    if (std::find(kNames.begin(), kNames.end(), armed->name) == kNames.end())
      bad(fmt::format("there is no failpoint '{}'", armed->name));
    const std::string count = item.substr(c1 + 1, c2 - c1 - 1);
    char* rest = nullptr;
    armed->at = std::strtol(count.c_str(), &rest, 10);
    if (count.empty() || *rest != '\0' || armed->at < 1) bad(fmt::format("hit count '{}' is not a positive integer", count));
    const std::string action = item.substr(c2 + 1);
    if (action == "kill") armed->action = Action::kKill;
    else if (action == "eio") armed->action = Action::kEio;
    else if (action == "enospc") armed->action = Action::kEnospc;
    else bad(fmt::format("action '{}' is not kill, eio or enospc", action));
    out.push_back(armed);
    start = end + 1;
  }
  return out;
}

const std::vector<Armed*>& armed() {
  static const std::vector<Armed*> points = parse(std::getenv(kEnvironment));
  return points;
}

}  // namespace

void check_environment() { (void)armed(); }

void hit(std::string_view name, const std::filesystem::path& file) {
  const auto& points = armed();
  if (points.empty()) return;
  if (std::find(kNames.begin(), kNames.end(), name) == kNames.end())
    throw Error(fmt::format("internal: failpoint '{}' is not in failpoint::kNames", name));
  for (Armed* p : points) {
    if (p->name != name || p->hits.fetch_add(1) + 1 != p->at) continue;
    if (p->action == Action::kKill) {
      std::raise(SIGKILL);
    }
    const int err = p->action == Action::kEio ? EIO : ENOSPC;
    throw Error(fmt::format("cannot write {}: {} (failpoint {}:{})", file.string(), std::strerror(err), name, p->at));
  }
}

void hit_at(std::string_view prefix, std::string_view step, const std::filesystem::path& file) {
  if (prefix.empty()) return;
  hit(fmt::format("{}.{}", prefix, step), file);
}

}  // namespace attnlab::failpoint
