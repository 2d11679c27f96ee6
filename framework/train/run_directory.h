// A run directory (results/<experiment>/<run>/) and the rules that keep it
// whole whatever happens to the process (docs/reliability.md):
//
//  - One writer: an flock on <dir>/.lock for the object's life.
//  - run.h5 is the record. Besides the curves it lists, in its /checkpoints
//    group, the checkpoints that belong to the run, each with the sha256 of
//    its bytes. A checkpoint file the record does not list is not the run's.
//  - Durable writes happen in one order: the checkpoint file (temporary,
//    fsync, rename), then the record that lists it (so the rows up to its step
//    are committed with it), then the removal of checkpoints the record no
//    longer lists. A crash anywhere leaves a record whose newest listed
//    checkpoint is on disk and whose rows reach at least its step.
//  - Resuming reconciles: stale temporary files and unlisted checkpoints are
//    removed; listed ones are verified newest first, and one that fails its
//    checksum is removed, with an event, in favour of the next older one.
//
// The training loop (trainer.cpp) only steps; this type owns the lifecycle.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <optional>
#include <string>

#include "config/run_config.h"
#include "core/run_lock.h"
#include "results/run_log.h"
#include "train/checkpoint.h"

namespace attnlab::train {

class RunDirectory {
 public:
  // Takes the lock (UserError naming the holder), removes temporary files a
  // killed process left behind, and with `restart` removes a previous run.
  RunDirectory(std::filesystem::path dir, bool restart);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path run_file() const { return dir_ / "run.h5"; }
  bool has_record() const;

  // UserError (exit 2) when the directory holds checkpoints without a record,
  // or a record whose config differs from `cfg` by value (naming the keys).
  void check_belongs(const RunConfig& cfg) const;

  // The checkpoint to resume from: the newest one `log` lists whose bytes
  // match their checksum. Removes unlisted checkpoint files, and listed ones
  // that fail their checksum (with an event in `log` and their listing
  // dropped). nullopt: nothing verified, train from step 0.
  std::optional<std::filesystem::path> reconcile(results::RunLog& log);

  // The durable step: writes the checkpoint for `state`, lists it in `log`
  // with its sha256 (keeping the newest `keep` listed), sets the status,
  // commits `log`, and then removes the checkpoint files no longer listed.
  void checkpoint_and_commit(results::RunLog& log, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                             const CheckpointState& state, int64_t keep, const std::string& status);

  // Removes the checkpoint files the committed `log` no longer lists: the
  // last step of checkpoint_and_commit, and, for a complete run that is
  // skipped rather than resumed, the prune a kill interrupted after the final
  // commit. The record is not touched.
  void prune(const results::RunLog& log) const;

 private:
  std::filesystem::path dir_;
  RunLock lock_;
};

// Sets the record's status and the step it refers to.
void set_status(results::RunLog& log, const std::string& status, int64_t step);

// The newest checkpoint a committed record lists whose checksum verifies
// (read-only: for eval and generate); nullopt when none does. Records
// written before checkpoints were listed fall back to the newest file.
std::optional<std::filesystem::path> verified_checkpoint(const std::filesystem::path& run_dir,
                                                         const results::RunLog& log);

// A run config's identity for its checkpoints: the sha256 of its values as
// the schema writes them, run.root left out (a moved results folder resumes).
std::string config_identity(RunConfig cfg);

}  // namespace attnlab::train
