// Parsing of defaults-list entries (Hydra's forms: `group: option`,
// `optional group: option`, `override /group: option`, `_self_`) and the
// discovery of config groups on disk.
#include "config/defaults_list.h"

#include <fmt/format.h>

#include <algorithm>

namespace attnlab::config {

std::vector<DefaultsEntry> parse_defaults(const Node& list, std::vector<Diagnostic>& problems) {
  std::vector<DefaultsEntry> out;
  if (!list.is_sequence()) {
    problems.push_back({"defaults", list.origin, "expected a list such as [model: tiny, _self_]"});
    return out;
  }
  for (const Node& item : list.items) {
    DefaultsEntry e;
    e.origin = item.origin;
    if (item.is_scalar() && item.value == "_self_") {
      e.is_self = true;
      out.push_back(e);
      continue;
    }
    if (!item.is_map() || item.entries.size() != 1) {
      problems.push_back({"defaults", item.origin, "expected 'group: option' or _self_"});
      continue;
    }
    std::string head = item.entries.front().first;
    const Node& value = item.entries.front().second;
    auto take = [&](const std::string& word) {
      if (head.compare(0, word.size() + 1, word + " ") != 0) return false;
      head = head.substr(head.find_first_not_of(' ', word.size()));
      return true;
    };
    e.optional = take("optional");
    e.is_override = take("override");
    if (!head.empty() && head.front() == '/') head = head.substr(1);
    if (head.empty() || head.find_first_of(" /@") != std::string::npos) {
      problems.push_back({"defaults", item.origin,
                          "expected 'group: option', 'optional group: option' or 'override /group: option', got '" +
                              item.entries.front().first + "'"});
      continue;
    }
    e.group = head;
    // A group listed twice would silently take the later option.
    if (auto first = std::find_if(out.begin(), out.end(), [&](const DefaultsEntry& d) { return d.group == head; });
        first != out.end()) {
      problems.push_back({"defaults." + head, item.origin,
                          fmt::format("group '{}' is listed twice in this defaults list (first at {}); keep one entry",
                                      head, first->origin)});
      continue;
    }
    if (value.is_scalar()) {
      e.option = value.value;
    } else if (!value.is_null()) {
      problems.push_back({"defaults." + head, value.origin, "expected an option name (or null)"});
      continue;
    }
    out.push_back(e);
  }
  return out;
}

std::map<std::string, std::vector<std::string>> find_groups(const std::filesystem::path& config_dir) {
  std::map<std::string, std::vector<std::string>> groups;
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator(config_dir, ec)) {
    if (!dir.is_directory(ec)) continue;
    std::vector<std::string> options;
    for (const auto& f : std::filesystem::directory_iterator(dir.path(), ec))
      if (f.is_regular_file(ec) && f.path().extension() == ".yaml") options.push_back(f.path().stem().string());
    if (options.empty()) continue;
    std::sort(options.begin(), options.end());
    groups[dir.path().filename().string()] = options;
  }
  return groups;
}

}  // namespace attnlab::config
