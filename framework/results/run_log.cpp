// RunLog: the in-memory record of one run and its atomic commit to run.h5
// (layout in run_log.h and docs/run-file.md). load() reads every group back so
// that load(path).commit() rewrites the same content.
#include "results/run_log.h"


#include <fmt/format.h>

#include <algorithm>
#include <system_error>

#include "core/error.h"
#include "core/failpoint.h"
#include "results/h5.h"

namespace attnlab::results {
namespace {

constexpr const char* kEventsGroup = "/events";

// "model" and "/model" name the same group; the root is "/".
std::string normalize_group(const std::string& group) {
  if (group.empty() || group == "/") return "/";
  std::string g = group.front() == '/' ? group : "/" + group;
  while (g.size() > 1 && g.back() == '/') g.pop_back();
  return g;
}

// A series is a relative group path ("train", "eval/context") with no empty
// parts; it cannot live under /events, which has its own layout.
void check_series_name(const std::string& series) {
  bool bad = series.empty() || series.front() == '/' || series.back() == '/' ||
             series.find("//") != std::string::npos || series == "events" || series.starts_with("events/");
  if (bad) throw Error(fmt::format("run log: '{}' is not a valid series name", series));
}

void check_column_name(const std::string& series, const std::string& column) {
  if (column.empty() || column.find('/') != std::string::npos || column == "." || column == "..") {
    throw Error(fmt::format("run log: series '{}': '{}' is not a valid column name", series, column));
  }
}

void check_no_nul(const std::string& s, const std::string& what) {
  if (s.find('\0') != std::string::npos) throw Error(fmt::format("run log: {} contains a NUL byte", what));
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

RunLog::RunLog(std::filesystem::path path) : path_(std::move(path)) {
  attrs_["/"]["schema_version"] = kRunSchemaVersion;
}

void RunLog::set_attr(const std::string& group, const std::string& name, AttrValue value) {
  std::string g = normalize_group(group);
  if (g == "/" && name == "schema_version") {
    throw Error("run log: schema_version is written by RunLog itself and cannot be set");
  }
  if (name.empty()) throw Error(fmt::format("run log: empty attribute name on group {}", g));
  check_no_nul(name, "an attribute name");
  if (const auto* s = std::get_if<std::string>(&value)) check_no_nul(*s, fmt::format("attribute {}/{}", g, name));
  attrs_[g][name] = std::move(value);
}

const AttrValue* RunLog::attr(const std::string& group, const std::string& name) const {
  auto g = attrs_.find(normalize_group(group));
  if (g == attrs_.end()) return nullptr;
  auto a = g->second.find(name);
  return a == g->second.end() ? nullptr : &a->second;
}

void RunLog::remove_attr(const std::string& group, const std::string& name) {
  const std::string g = normalize_group(group);
  if (g == "/" && name == "schema_version") throw Error("run log: schema_version cannot be removed");
  auto it = attrs_.find(g);
  if (it == attrs_.end()) return;
  it->second.erase(name);
  if (it->second.empty()) attrs_.erase(it);
}

void RunLog::append(const std::string& series, const std::map<std::string, double>& row) {
  check_series_name(series);
  if (row.empty()) throw Error(fmt::format("run log: empty row appended to series '{}'", series));
  auto it = series_.find(series);
  if (it == series_.end()) {
    // A new series: its columns must not collide with another series' group.
    for (const auto& [col, v] : row) {
      check_column_name(series, col);
      if (series_.contains(series + "/" + col)) {
        throw Error(fmt::format("run log: column '{}' of series '{}' collides with series '{}/{}'", col, series,
                                series, col));
      }
    }
    for (const auto& [other, cols] : series_) {
      if (series.starts_with(other + "/")) {
        std::string child = series.substr(other.size() + 1);
        child = child.substr(0, child.find('/'));
        if (cols.contains(child)) {
          throw Error(fmt::format("run log: series '{}' collides with column '{}' of series '{}'", series, child,
                                  other));
        }
      }
    }
    auto& cols = series_[series];
    for (const auto& [col, v] : row) cols[col].push_back(v);
    return;
  }
  auto& cols = it->second;
  std::vector<std::string> missing, extra;
  for (const auto& [col, values] : cols) {
    if (!row.contains(col)) missing.push_back(col);
  }
  for (const auto& [col, v] : row) {
    if (!cols.contains(col)) extra.push_back(col);
  }
  if (!missing.empty() || !extra.empty()) {
    throw Error(fmt::format("run log: row for series '{}' does not match its columns (missing: [{}], unexpected: [{}])",
                            series, join_names(missing), join_names(extra)));
  }
  for (const auto& [col, v] : row) cols[col].push_back(v);
}

void RunLog::add_column(const std::string& series, const std::string& name, double fill) {
  auto it = series_.find(series);
  if (it == series_.end() || it->second.empty() || it->second.contains(name)) return;
  check_column_name(series, name);
  if (series_.contains(series + "/" + name))
    throw Error(fmt::format("run log: column '{}' of series '{}' collides with series '{}/{}'", name, series, series,
                            name));
  const size_t n = it->second.begin()->second.size();
  it->second[name] = std::vector<double>(n, fill);
}

std::vector<double> RunLog::column(const std::string& series, const std::string& name) const {
  auto s = series_.find(series);
  if (s == series_.end()) return {};
  auto c = s->second.find(name);
  return c == s->second.end() ? std::vector<double>{} : c->second;
}

std::vector<std::string> RunLog::columns(const std::string& series) const {
  std::vector<std::string> out;
  const auto it = series_.find(series);
  if (it != series_.end())
    for (const auto& [name, values] : it->second) out.push_back(name);
  return out;
}

std::vector<std::string> RunLog::series_names() const {
  std::vector<std::string> names;
  for (const auto& [name, cols] : series_) names.push_back(name);
  return names;
}

void RunLog::truncate_after(int64_t step) {
  for (auto& [name, cols] : series_) {
    auto steps = cols.find("step");
    if (steps == cols.end()) continue;  // series without a step column are not per-step records
    std::vector<bool> keep;
    keep.reserve(steps->second.size());
    for (double s : steps->second) keep.push_back(!(s > static_cast<double>(step)));
    for (auto& [col, values] : cols) {
      size_t out = 0;
      for (size_t i = 0; i < values.size(); ++i) {
        if (keep[i]) values[out++] = values[i];
      }
      values.resize(out);
    }
  }
}

int64_t RunLog::remove_rows(const std::string& series,
                            const std::function<bool(const std::map<std::string, double>&)>& match) {
  auto it = series_.find(series);
  if (it == series_.end() || it->second.empty()) return 0;
  auto& cols = it->second;
  const size_t n = cols.begin()->second.size();
  std::vector<bool> keep(n, true);
  int64_t removed = 0;
  for (size_t i = 0; i < n; ++i) {
    std::map<std::string, double> row;
    for (const auto& [col, values] : cols) row[col] = values[i];
    if (match(row)) {
      keep[i] = false;
      ++removed;
    }
  }
  for (auto& [col, values] : cols) {
    size_t out = 0;
    for (size_t i = 0; i < values.size(); ++i)
      if (keep[i]) values[out++] = values[i];
    values.resize(out);
  }
  return removed;
}

void RunLog::add_event(Event event) {
  check_no_nul(event.kind, "an event kind");
  check_no_nul(event.message, "an event message");
  events_.push_back(std::move(event));
}

void RunLog::commit() const {
  std::error_code ec;
  if (!path_.parent_path().empty()) {
    std::filesystem::create_directories(path_.parent_path(), ec);
    if (ec) throw Error(fmt::format("cannot create directory {}: {}", path_.parent_path().string(), ec.message()));
  }
  // The file is built in memory and written by atomic_write_text (beside the
  // target, fsync, rename): a full disk or an I/O error fails that write
  // cleanly, naming the file, and leaves no .tmp; HDF5 itself never touches
  // the disk (a close that failed there left it unable to shut down).
  std::string image;
  {
    h5::File file = h5::create_memory_file(path_.string());
    for (const auto& [group, attrs] : attrs_) {
      h5::Group g = h5::create_group(file.id(), group);
      for (const auto& [name, value] : attrs) h5::write_attr(g.id(), name, value);
    }
    {
      h5::Group root = h5::open_group(file.id(), "/");
      h5::write_attr(root.id(), "schema_version", kRunSchemaVersion);
    }
    for (const auto& [series, cols] : series_) {
      h5::Group g = h5::create_group(file.id(), "/" + series);
      for (const auto& [col, values] : cols) h5::write_f64(g.id(), col, values);
    }
    {
      h5::Group g = h5::create_group(file.id(), kEventsGroup);
      std::vector<int64_t> steps;
      std::vector<std::string> kinds, messages;
      for (const auto& e : events_) {
        steps.push_back(e.step);
        kinds.push_back(e.kind);
        messages.push_back(e.message);
      }
      h5::write_i64(g.id(), "step", steps);
      h5::write_strings(g.id(), "kind", kinds);
      h5::write_strings(g.id(), "message", messages);
    }
    image = h5::file_image(file);
    file.close();
  }
  atomic_write_text(path_, image, "run_commit");
}

RunLog RunLog::load(const std::filesystem::path& path) {
  // A run file that cannot be read is the user's to deal with (a damaged or
  // foreign file), not an internal error: name it and say what to do.
  try {
    return load_unchecked(path);
  } catch (const UserError&) {
    throw;
  } catch (const Error& e) {
    throw_user_error("", path.string(),
                     fmt::format("cannot read this run file ({}); it may be damaged or not attnlab's: move it away "
                                 "and re-run with --restart, or restore it",
                                 e.what()));
  }
}

RunLog RunLog::load_unchecked(const std::filesystem::path& path) {
  RunLog log(path);
  log.attrs_.clear();
  h5::File file = h5::open_file_read(path);

  // Depth-first over groups: attributes everywhere, datasets form series,
  // /events is read as events.
  std::vector<std::string> pending = {"/"};
  while (!pending.empty()) {
    std::string group = pending.back();
    pending.pop_back();
    h5::Group g = h5::open_group(file.id(), group);
    auto attrs = h5::read_attrs(g.id());
    if (!attrs.empty()) log.attrs_[group] = std::move(attrs);
    if (group == kEventsGroup) {
      auto steps = h5::read_i64(g.id(), "step");
      auto kinds = h5::read_strings(g.id(), "kind");
      auto messages = h5::read_strings(g.id(), "message");
      if (kinds.size() != steps.size() || messages.size() != steps.size()) {
        throw Error(fmt::format("{}: /events columns have different lengths", path.string()));
      }
      for (size_t i = 0; i < steps.size(); ++i) log.events_.push_back({steps[i], kinds[i], messages[i]});
      continue;
    }
    h5::Children children = h5::list_children(g.id());
    if (!children.datasets.empty()) {
      if (group == "/") throw Error(fmt::format("{}: unexpected datasets at the root", path.string()));
      std::string series = group.substr(1);
      auto& cols = log.series_[series];
      size_t rows = 0;
      for (const auto& name : children.datasets) {
        cols[name] = h5::read_f64(g.id(), name);
        if (cols.size() > 1 && cols[name].size() != rows) {
          throw Error(fmt::format("{}: the columns of /{} have different lengths", path.string(), series));
        }
        rows = cols[name].size();
      }
    }
    for (const auto& child : children.groups) pending.push_back(group == "/" ? "/" + child : group + "/" + child);
  }

  const AttrValue* version = log.attr("/", "schema_version");
  if (version == nullptr || !std::holds_alternative<int64_t>(*version)) {
    throw Error(fmt::format("{} is not an attnlab run file (no integer schema_version on /)", path.string()));
  }
  if (std::get<int64_t>(*version) > kRunSchemaVersion) {
    throw Error(fmt::format("{} has run-file schema {}, newer than this attnlab's {}", path.string(),
                            std::get<int64_t>(*version), kRunSchemaVersion));
  }
  return log;
}

}  // namespace attnlab::results
