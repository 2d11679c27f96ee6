// The run directory's lifecycle (run_directory.h): lock, identity, the order
// of durable writes, and resume reconciliation.
#include "train/run_directory.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <system_error>

#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"
#include "core/failpoint.h"
#include "core/files.h"
#include "data/sha256.h"

namespace attnlab::train {
namespace fs = std::filesystem;
using results::AttrValue;
using results::RunLog;

namespace {

// The record's list of checkpoints: one attribute per file, its sha256.
constexpr const char* kListGroup = "/checkpoints";
// Run files from before checkpoints were listed (schema_version 1).
constexpr int64_t kFirstListingSchema = 2;

bool lists_checkpoints(const RunLog& log) {
  const AttrValue* v = log.attr("/", "schema_version");
  return v == nullptr || std::get<int64_t>(*v) >= kFirstListingSchema;
}

// name -> sha256 of every checkpoint the record lists.
std::map<std::string, std::string> listed(const RunLog& log) {
  std::map<std::string, std::string> out;
  const auto it = log.attrs().find(kListGroup);
  if (it == log.attrs().end()) return out;
  for (const auto& [name, value] : it->second)
    if (const auto* sha = std::get_if<std::string>(&value)) out[name] = *sha;
  return out;
}

void remove_file(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) throw Error(fmt::format("cannot remove {}: {}", path.string(), ec.message()));
}

// Temporary files (*.tmp) a killed process left in the run directory: ours
// to remove while we hold the lock. Links are removed as links, never followed.
void remove_stale_temporaries(const fs::path& dir) {
  for (const fs::path& sub : {dir, dir / "checkpoints", dir / "tokenizer"}) {
    std::error_code ec;
    if (fs::is_symlink(sub, ec) || !fs::is_directory(sub, ec)) continue;
    for (const auto& entry : fs::directory_iterator(sub, ec)) {
      if (entry.path().extension() == ".tmp" && !entry.is_directory(ec)) remove_file(entry.path());
    }
  }
}

void remove_previous_run(const fs::path& dir) {
  for (const char* name : {"run.h5", "config.yaml", "overrides.yaml", "defaults.yaml"}) remove_file(dir / name);
  fs::remove_all(dir / "checkpoints");  // a link in its place is removed as a link
  fs::remove_all(dir / "tokenizer");
}

// The keys whose values differ between the recorded config and `now`
// (numbers as numbers, paths normalised, run.root ignored), comma-separated.
std::string changed_keys(const fs::path& config_file, const RunConfig& now) {
  const auto text = read_file(config_file);
  if (!text) return {};  // no config yet: nothing to compare
  std::vector<Diagnostic> problems;
  RunConfig before;
  try {
    before = config::to_run_config(config::load_yaml_string(*text, config_file.string()).root, problems);
  } catch (const UserError&) {
    return "its config.yaml cannot be read";
  }
  if (!problems.empty()) return "its config.yaml does not fit this version's schema";
  std::string out;
  for (const auto& key : config::differing_keys(before, now, {"run.root"})) out += (out.empty() ? "" : ", ") + key;
  return out;
}

}  // namespace

std::string config_identity(RunConfig cfg) {
  cfg.run.root.clear();
  return data::sha256_hex(config::to_yaml(config::to_tree(cfg, "")));
}

void set_status(RunLog& log, const std::string& status, int64_t step) {
  log.set_attr("/", "status", status);
  log.set_attr("/", "status_step", step);
}

RunDirectory::RunDirectory(fs::path dir, bool restart) : dir_(std::move(dir)), lock_(dir_) {
  refuse_linked_checkpoints(dir_);
  if (restart) remove_previous_run(dir_);
  remove_stale_temporaries(dir_);
}

bool RunDirectory::has_record() const { return fs::exists(run_file()); }

void RunDirectory::check_belongs(const RunConfig& cfg) const {
  if (!has_record()) {
    // Checkpoints without their run file belong to a run whose record is
    // gone; training beside them would let the older run's newer step win.
    const auto files = list_checkpoints(dir_);
    if (!files.empty())
      throw_user_error("run.name", "",
                       fmt::format("{} holds checkpoints ({}) but no run.h5: they belong to a run whose record is "
                                   "gone; pass --restart to start over, or move them away",
                                   dir_.string(), files.back().filename().string()));
    return;
  }
  const auto changed = changed_keys(dir_ / "config.yaml", cfg);
  if (!changed.empty())
    throw_user_error("run.name", "",
                     fmt::format("{} already holds a run with a different config ({}); choose another run.name, or "
                                 "pass --restart to replace it",
                                 dir_.string(), changed));
}

std::optional<fs::path> RunDirectory::reconcile(RunLog& log) {
  const auto files = list_checkpoints(dir_);
  if (!lists_checkpoints(log)) return files.empty() ? std::nullopt : std::optional<fs::path>(files.back());
  const auto list = listed(log);
  std::optional<fs::path> chosen;
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    const std::string name = it->filename().string();
    const auto entry = list.find(name);
    if (entry == list.end()) {  // written after the last commit, pruned before a crash, or not this run's
      log.add_event({std::stoll(name.substr(5, 7)), "checkpoint_unlisted",
                     fmt::format("removed {}: run.h5 does not list it (written after the last commit, or not this "
                                 "run's)",
                                 name)});
      remove_file(*it);
      continue;
    }
    if (chosen) continue;  // older listed ones stay, as fallbacks for the next resume
    if (data::sha256_file(*it) == entry->second) {
      chosen = *it;
      continue;
    }
    log.add_event({std::stoll(name.substr(5, 7)), "checkpoint_corrupt",
                   fmt::format("{} does not match its recorded sha256; removed, resuming from an older one", name)});
    log.remove_attr(kListGroup, name);
    remove_file(*it);
  }
  // Listings whose files are gone (removed by hand) are dropped too.
  for (const auto& [name, sha] : list)
    if (!fs::exists(dir_ / "checkpoints" / name)) log.remove_attr(kListGroup, name);
  return chosen;
}

void RunDirectory::checkpoint_and_commit(RunLog& log, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                                         const CheckpointState& state, int64_t keep, const std::string& status) {
  const fs::path path = save_checkpoint(dir_, model, optimizer, state);
  log.set_attr(kListGroup, path.filename().string(), data::sha256_file(path));
  // Keep the newest `keep` listed (always this one); the rest leave the list now
  // and the disk only once the list without them is committed.
  auto list = listed(log);
  std::vector<std::string> names;
  for (const auto& [name, sha] : list) names.push_back(name);  // sorted: zero-padded steps
  const size_t n_keep = static_cast<size_t>(std::max<int64_t>(1, keep));
  for (size_t i = 0; i + n_keep < names.size(); ++i) log.remove_attr(kListGroup, names[i]);
  set_status(log, status, state.step);
  log.commit();
  prune(log);
}

void RunDirectory::prune(const RunLog& log) const {
  if (!lists_checkpoints(log)) return;  // schema 1: nothing says which files are the run's
  const auto still = listed(log);
  for (const auto& file : list_checkpoints(dir_)) {
    if (still.contains(file.filename().string())) continue;
    failpoint::hit("checkpoint.prune", file);
    remove_file(file);
  }
}

std::optional<fs::path> verified_checkpoint(const fs::path& run_dir, const RunLog& log) {
  const auto files = list_checkpoints(run_dir);
  if (!lists_checkpoints(log)) return files.empty() ? std::nullopt : std::optional<fs::path>(files.back());
  const auto list = listed(log);
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    const auto entry = list.find(it->filename().string());
    if (entry != list.end() && data::sha256_file(*it) == entry->second) return *it;
  }
  return std::nullopt;
}

}  // namespace attnlab::train
