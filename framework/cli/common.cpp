// Shared CLI helpers.
#include "cli/common.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "config/inspect.h"
#include "core/error.h"

namespace attnlab::cli {

std::filesystem::path default_config_dir() {
  if (std::filesystem::exists("configs/config.yaml")) return "configs";
  return std::filesystem::path(ATTNLAB_SOURCE_DIR) / "configs";
}

std::string groups_footer(const std::filesystem::path& config_dir) {
  try {
    std::string groups = config::format_groups(config_dir);
    return "\n" + groups.substr(0, groups.size() - 1);
  } catch (const Error&) {
    return "";  // help must print even when the config folder is broken
  }
}

void add_config_args(CLI::App& cmd, ConfigArgs& args) {
  cmd.add_option("overrides", args.overrides, "Config overrides: key=value, group=option, +key=value, ~key, ...");
  cmd.add_option("--config-dir", args.config_dir, "Folder holding config.yaml and the config groups");
  cmd.footer([&args] {
    return groups_footer(args.config_dir.empty() ? default_config_dir() : std::filesystem::path(args.config_dir));
  });
}

config::ComposeRequest make_request(const ConfigArgs& args, std::vector<std::string> leading_overrides) {
  config::ComposeRequest request;
  request.config_dir = args.config_dir.empty() ? default_config_dir() : std::filesystem::path(args.config_dir);
  request.overrides = std::move(leading_overrides);
  request.overrides.insert(request.overrides.end(), args.overrides.begin(), args.overrides.end());
  return request;
}

CLI::Validator number_in(double lo, double hi, bool lo_open, bool hi_open) {
  const std::string range = fmt::format("{}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
  const std::string expected = "a number in " + range;
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(v))
          return fmt::format("'{}' is not {}", text, expected);
        if (v < lo || v > hi || (lo_open && v == lo) || (hi_open && v == hi))
          return fmt::format("{} is outside {}", text, range);
        return "";
      },
      expected);
}

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  const std::string range = fmt::format("[{}, {}]", lo, hi);
  const std::string expected = "an integer in " + range;
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc::result_out_of_range) return fmt::format("{} does not fit {}", text, expected);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size())
          return fmt::format("'{}' is not {}", text, expected);
        if (v < lo || v > hi) return fmt::format("{} is outside {}", text, range);
        return "";
      },
      expected);
}

std::vector<std::string> split_list(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (const auto& value : raw) {
    size_t start = 0;
    while (start <= value.size()) {
      const size_t comma = value.find(',', start);
      out.push_back(value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

CLI::Option* add_list_option(CLI::App& cmd, const std::string& name, std::vector<std::string>& raw,
                             const std::string& help, const CLI::Validator& element) {
  const CLI::Validator each(
      [element](std::string& value) -> std::string {
        for (auto item : split_list({value}))
          if (auto why = element(item); !why.empty()) return why;
        return "";
      },
      element.get_description() + ", comma-separated");
  return cmd.add_option(name, raw, help)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(each);
}

}  // namespace attnlab::cli
