// Multirun planning: expands the sweep values among the overrides (and the
// `sweep:` block of an experiment file) into jobs, the cartesian product of
// the sweep dimensions with zip(...) dimensions paired, and validates every
// job with compose() so a bad sweep fails before anything runs.
#pragma once

#include <string>
#include <vector>

#include "config/compose.h"

namespace attnlab::config {

inline constexpr size_t kMaxJobs = 10000;

struct Job {
  std::vector<std::string> overrides;  // this job's overrides, each a single value
  std::string run_id;                  // e.g. "gqa-k2-s0-3f9a1c": readable prefix + stable hash
  Composed composed;                   // the job's validated config (planning composes every job)
};

// Expands and validates. Throws UserError with every problem: malformed
// overrides, a glob over something that is not a group, and each distinct
// error of any job (naming the first job that has it).
std::vector<Job> plan_multirun(const ComposeRequest& request);

// The run id of one job: values of the swept overrides (`swept`, e.g.
// "attention=gqa"), or of all overrides when nothing is swept, abbreviated and
// joined by '-', then 6 hex digits of a hash of the effective overrides (the
// last value per key, sorted). Contains only [A-Za-z0-9._=-].
std::string make_run_id(const std::vector<std::string>& overrides, const std::vector<std::string>& swept);

// For --dry-run: one line per job, "[i/n] RUN_ID  OVERRIDES".
std::string format_dry_run(const std::vector<Job>& jobs);

}  // namespace attnlab::config
