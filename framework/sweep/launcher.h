// How `attnlab sweep` launches its rows: the `launcher` config group.
//
// configs/launcher/NAME.yaml (chosen with launcher=NAME or --launcher NAME;
// default local) names the launcher `type` (local or slurm) and sets any of
// its keys; the experiment's `launcher:` block and launcher.KEY=VALUE
// overrides go on top, in that order. The command's flags (--jobs,
// --partition, ...) override all of them. Keys of the other type are
// accepted and unused, so an experiment can carry Slurm settings and still
// run locally. The launcher never changes a run: its keys are not part of
// any run's config or id.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "sweep/slurm.h"

namespace attnlab::sweep {

struct LauncherConfig {
  std::string name = "local";  // the group option: configs/launcher/<name>.yaml
  std::string type = "local";  // local | slurm
  int64_t jobs = 1;            // local: worker processes
  std::vector<std::string> devices;  // local: a pool of CUDA devices, one per worker
  SlurmOptions slurm;
};

// Takes `launcher=NAME` and `launcher.KEY=VALUE` out of `overrides` (they
// configure the launcher, not the runs) and returns them.
std::vector<std::string> take_launcher_overrides(std::vector<std::string>& overrides);

// The launcher from its group file (`name`, or the one a launcher=NAME
// override picks; local when neither), the experiment's `launcher:` block and
// the launcher.KEY=VALUE overrides. UserError naming the file and line, or
// the override, for an unknown option or key and a value of the wrong type.
LauncherConfig resolve_launcher(const std::filesystem::path& config_dir, const std::filesystem::path& experiment,
                                const std::vector<std::string>& overrides, const std::string& name = "");

// The keys a launcher file, block or override may set.
const std::vector<std::string>& launcher_keys();

}  // namespace attnlab::sweep
