// The Slurm launcher of `attnlab sweep`: one job array whose task I runs
// `attnlab sweep ... --task I` (one manifest row, with the run's lock and
// resume rules). Slurm sends SIGTERM `signal_seconds` before the time limit
// (or on preemption: `scancel --signal=TERM --batch`); the batch script
// passes it to attnlab, which checkpoints and exits 143, and the script then
// requeues its own task, which resumes from the checkpoint.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "sweep/manifest.h"

namespace attnlab::sweep {

struct SlurmOptions {
  std::string partition;                 // --partition; empty: the cluster's default
  std::string time;                      // --time (e.g. 04:00:00); empty: the partition's default
  int64_t gpus_per_task = 0;             // --gpus-per-task
  int64_t cpus_per_task = 1;             // --cpus-per-task (and attnlab's threads)
  int64_t max_parallel = 0;              // %P of --array=0-N%P; 0: no limit
  int64_t signal_seconds = 120;          // --signal=B:TERM@S
  std::vector<std::string> sbatch;       // extra `#SBATCH` lines, e.g. "--account=lab"
};

// Refuses, with a UserError naming the flag and its launcher key, any value
// that would not stay data in the batch script: a newline or other control
// character anywhere (it would start a new #SBATCH or shell line), a
// partition or time limit outside the characters Slurm uses for them, an
// extra sbatch option that does not start with '-'. Also the experiment's
// name and the script's paths, which the script names too. Called before
// anything is written.
void check_slurm_options(const SlurmOptions& o, const std::string& experiment, const std::filesystem::path& sweep_dir);

// The batch script for the sweep's array. `worker` is the attnlab command
// line without its `--task I`.
std::string sbatch_script(const std::filesystem::path& sweep_dir, const Manifest& m,
                          const std::vector<std::string>& worker, const SlurmOptions& o);

// Writes <sweep>/slurm/sweep.sbatch, submits it with `sbatch --parsable`,
// records the job id in <sweep>/slurm/jobs and prints it. Returns the exit
// code (sbatch's failure is an Error naming it).
int submit(const std::filesystem::path& sweep_dir, const Manifest& m, const std::vector<std::string>& worker,
           const SlurmOptions& o);

// Manifest row -> Slurm state (PENDING, RUNNING, ...) of the sweep's jobs
// still known to squeue; empty when none or when squeue is not there.
std::map<int64_t, std::string> slurm_states(const std::filesystem::path& sweep_dir);

}  // namespace attnlab::sweep
