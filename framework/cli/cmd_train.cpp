// `attnlab train [overrides]`: one run, or with -m a multirun over sweep values.
#include <fmt/format.h>

#include <csignal>

#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "config/multirun.h"
#include "train/trainer.h"

namespace attnlab::cli {
namespace {

struct TrainArgs {
  ConfigArgs config;
  bool multirun = false;
  bool dry_run = false;
  bool restart = false;
  int64_t stop_after = 0;
};

// 3 diverged; an interrupted run exits as the shell reports the signal that
// stopped it (128 + signal: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), after its
// checkpoint, so a scheduler sees a preempted job, not a finished one.
int exit_code(const train::TrainOutcome& outcome) {
  if (outcome.status == "diverged") return 3;
  if (outcome.status == "interrupted") return 128 + (outcome.signal != 0 ? outcome.signal : SIGINT);
  return 0;
}

}  // namespace

int train_one(const config::Composed& composed, const std::filesystem::path& run_dir, bool restart, int64_t stop_after) {
  train::TrainRequest request{composed, run_dir, restart, stop_after, true};
  auto outcome = train::train(request);
  if (outcome.status == "skipped") {
    fmt::print("{}: already complete (val ppl {:.3f}); nothing to do. --restart trains it again.\n",
               run_dir.string(), outcome.final_val_ppl);
  } else if (outcome.final_val_ppl == 0.0) {  // stopped before this process evaluated
    fmt::print("{}: {} after {} steps, {:.1f} ms/step (median)\n", run_dir.string(), outcome.status, outcome.steps,
               outcome.ms_per_step);
  } else {
    fmt::print("{}: {} after {} steps, val loss {:.4f}, val ppl {:.3f}, {:.1f} ms/step (median)\n", run_dir.string(),
               outcome.status, outcome.steps, outcome.final_val_loss, outcome.final_val_ppl, outcome.ms_per_step);
  }
  fmt::print("run file: {}\n", outcome.run_file.string());
  return exit_code(outcome);
}

namespace {

int run_one(const config::Composed& composed, const std::filesystem::path& run_dir, const TrainArgs& args) {
  return train_one(composed, run_dir, args.restart, args.stop_after);
}

int run(const TrainArgs& args) {
  auto request = make_request(args.config);
  if (!args.multirun) {
    if (args.dry_run) throw UserError("--dry-run plans a multirun: add -m");
    auto composed = config::compose(request);
    auto dir = std::filesystem::path(composed.run.run.root) / composed.run.run.name;
    // Without a run.name, runs are told apart by their overrides, like a
    // sweep's jobs: `train attention=mla` after `train` is another run.
    if (composed.run.run.name == RunConfig().run.name) dir /= config::make_run_id(args.config.overrides, {});
    return run_one(composed, dir, args);
  }
  // Plan (and validate) every job before the first one runs.
  auto jobs = config::plan_multirun(request);
  fmt::print("multirun: {} job(s)\n{}", jobs.size(), config::format_dry_run(jobs));
  if (args.dry_run) return 0;
  int worst = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    const auto& composed = jobs[i].composed;
    fmt::print("[{}/{}] {}\n", i + 1, jobs.size(), jobs[i].run_id);
    auto dir = std::filesystem::path(composed.run.run.root) / composed.run.run.name / jobs[i].run_id;
    int code = run_one(composed, dir, args);
    if (code > 128) return code;  // a signal (Ctrl-C, SIGTERM, SIGHUP) stops the whole multirun
    worst = std::max(worst, code);
  }
  return worst;
}

}  // namespace

void add_train(CLI::App& app, Action& action) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "Train one run (or a multirun with -m)");
  add_config_args(*cmd, args->config);
  cmd->add_flag("-m,--multirun", args->multirun, "Expand sweep values (a=1,2 range(..) zip(..)) into one run each");
  cmd->add_flag("--dry-run", args->dry_run, "With -m: print the planned runs and exit");
  cmd->add_flag("--restart", args->restart, "Discard an existing run of the same name and train from scratch");
  cmd->add_option("--stop-after", args->stop_after,
                  "Checkpoint and stop after N steps (re-run the same command to resume)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([&action, args] { action = [args] { return run(*args); }; });
}

}  // namespace attnlab::cli
