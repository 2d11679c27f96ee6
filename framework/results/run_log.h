// The run file: one HDF5 file per run (run.h5), one writer.
//
// RunLog keeps the run's record in memory and commit() rewrites the whole file
// atomically (run.h5.tmp beside it, fsync, rename, fsync the directory), so the
// file on disk is always complete and matches the last commit. Commit at every
// checkpoint and at every terminal state (complete, diverged, failed).
//
// Layout (docs/run-file.md):
//   /            attrs: schema_version, attnlab_version, status, status_step, started,
//                       finished, config_yaml, overrides, seed, hostname, torch_version, ...
//   /model       attrs: n_params, attention, position, kv_bytes_per_token, ...
//   /train/<col> 1-D float64 datasets, one row per logged step (step, loss, lr, ...)
//   /eval/<col>  likewise for evaluations (step, val_loss, val_ppl, ...)
//   /summary     attrs: final_val_ppl, best_val_ppl, train_seconds, tokens_seen
//   /checkpoints attrs: one per checkpoint that belongs to the run, its file name -> sha256
//   /events      step (int64), kind (string), message (string)
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace attnlab::results {

// 2: /checkpoints lists the run's checkpoints with their sha256 (train/run_directory.h).
inline constexpr int64_t kRunSchemaVersion = 2;

using AttrValue = std::variant<int64_t, double, std::string>;

struct Event {
  int64_t step = 0;
  std::string kind;     // "start", "eval", "checkpoint", "resume", "diverged", ...
  std::string message;
};

class RunLog {
 public:
  // A new, empty log whose committed file will be `path` (e.g. results/x/run.h5).
  explicit RunLog(std::filesystem::path path);

  // Reads a committed run file back (to resume a run, or to inspect one).
  // UserError naming the file when it cannot be read (damaged, not HDF5, or
  // a newer schema).
  static RunLog load(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }

  // Attributes on a group: "/" (root), "/model", "/summary", ... ("model" and
  // "/model" are the same group). Strings are UTF-8 without NUL bytes (Error).
  // schema_version is RunLog's own and cannot be set.
  void set_attr(const std::string& group, const std::string& name, AttrValue value);
  const AttrValue* attr(const std::string& group, const std::string& name) const;
  // Removes an attribute (nothing when absent); a group left without
  // attributes is not written.
  void remove_attr(const std::string& group, const std::string& name);
  // Every attribute, by normalized group ("/", "/model", ...).
  const std::map<std::string, std::map<std::string, AttrValue>>& attrs() const { return attrs_; }

  // Appends one row to a series ("train", "eval", "eval/context", ...). Every
  // row of a series must have the same columns as its first row.
  void append(const std::string& series, const std::map<std::string, double>& row);
  // Adds a column to a series that lacks it, every existing row holding
  // `fill` (a setting that rows written before it existed had implicitly);
  // nothing when the series is absent or already has the column.
  void add_column(const std::string& series, const std::string& name, double fill);
  // The values of one column; empty when absent.
  std::vector<double> column(const std::string& series, const std::string& name) const;
  // Names of the columns of a series, sorted; empty when absent.
  std::vector<std::string> columns(const std::string& series) const;
  // Names of the series that hold rows ("eval", "eval/context", "train"), sorted.
  std::vector<std::string> series_names() const;
  // Drops rows whose "step" column is greater than `step` (used when resuming
  // from a checkpoint older than the last logged rows).
  void truncate_after(int64_t step);
  // Drops the rows of `series` for which `match(row)` is true (used to
  // replace evaluation rows that have the same settings); returns how many.
  int64_t remove_rows(const std::string& series,
                      const std::function<bool(const std::map<std::string, double>&)>& match);

  // Events are a history: truncate_after() keeps them. No NUL bytes in strings.
  void add_event(Event event);
  const std::vector<Event>& events() const { return events_; }

  // Writes the whole record to path() atomically, creating its directory if
  // needed. Throws attnlab::Error on I/O failure; the previous file is then
  // left as it was and no run.h5.tmp remains.
  void commit() const;

 private:
  static RunLog load_unchecked(const std::filesystem::path& path);

  std::filesystem::path path_;
  std::map<std::string, std::map<std::string, AttrValue>> attrs_;                    // group -> name -> value
  std::map<std::string, std::map<std::string, std::vector<double>>> series_;         // series -> column -> values
  std::vector<Event> events_;
};

// Writes `bytes` to `path` atomically: a temporary file beside it, fsync,
// rename over the target, fsync the directory. Used for config.yaml & co.
// `failpoint` names its failpoints ("config" -> config.write, ...); empty for none.
void atomic_write_text(const std::filesystem::path& path, const std::string& bytes,
                       std::string_view failpoint = {});

}  // namespace attnlab::results
