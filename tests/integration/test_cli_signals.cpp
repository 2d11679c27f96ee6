// Signals and the last step: SIGTERM and SIGUSR1 (a scheduler's preemption)
// and SIGHUP checkpoint and stop like Ctrl-C and exit 128 + signal;
// a run resumed at its last step completes with its real summary, not zeros.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bitset>
#include <chrono>
#include <fstream>
#include <thread>

#include "results/run_log.h"
#include "run_compare.h"
#include "test_support.h"
#include "train/checkpoint.h"

using attnlab::results::RunLog;
using attnlab::testing::run_cli;
using attnlab::testing::status_of;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

namespace {
std::string train_args(const TempDir& tmp, int steps) {
  return "train" + text_corpus(tmp.path, "And the evening and the morning were the day ", 800) + " run.root=" + tmp.path.string() + " run.name=r model.max_seq_len=32 train.seq_len=32 train.device=cpu" +
         " train.steps=" + std::to_string(steps) + " train.eval_every=0 train.checkpoint_every=0";
}

// The signals whose handler is installed in process `pid` (SigCgt in
// /proc/PID/status, bit N-1 for signal N); empty if the process is gone.
std::bitset<64> caught_signals(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("SigCgt:", 0) == 0) return std::bitset<64>(std::stoull(line.substr(7), nullptr, 16));
  return {};
}

// Starts `attnlab <args>` in the background and returns its PID once run.h5
// says it is training and the trainer's signal handlers are in (or after
// 60 s); -1 if it could not start.
pid_t start_training(const std::string& args, const fs::path& run_file) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const std::string command = "cd '" ATTNLAB_SOURCE_DIR "' && exec '" ATTNLAB_BINARY "' " + args + " > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 600 && !(fs::exists(run_file) && status_of(run_file) == "running"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (int i = 0; i < 600 && !caught_signals(pid).test(SIGTERM - 1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return pid;
}

}  // namespace

TEST_CASE("SIGTERM, SIGHUP, SIGUSR1 and SIGINT checkpoint at a step boundary, commit interrupted, exit 128 + signal",
          "[cli][integration][signals]") {
  for (int signo : {SIGTERM, SIGHUP, SIGUSR1, SIGINT}) {
    INFO("signal " << signo);
    TempDir tmp;
    const std::string args = train_args(tmp, 100000);
    const fs::path run_file = tmp.path / "r" / "run.h5";
    const pid_t pid = start_training(args, run_file);
    REQUIRE(pid > 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // a few steps in
    REQUIRE(kill(pid, signo) == 0);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 128 + signo);
    CHECK(status_of(run_file) == "interrupted");
    const auto checkpoint = attnlab::train::latest_checkpoint(tmp.path / "r");
    REQUIRE(checkpoint.has_value());
    auto log = RunLog::load(run_file);
    const auto* stopped_at = log.attr("/", "status_step");
    REQUIRE(stopped_at != nullptr);
    CHECK(std::get<int64_t>(*stopped_at) > 0);
    CHECK(log.events().back().kind == "interrupted");
    CHECK_THAT(log.events().back().message,
               Catch::Contains(signo == SIGTERM  ? "SIGTERM"
                               : signo == SIGHUP ? "SIGHUP"
                               : signo == SIGINT ? "SIGINT"
                                                 : "SIGUSR1"));
  }
}

TEST_CASE("a second signal while the first one's checkpoint is written ends the process at once",
          "[cli][integration][signals]") {
  TempDir tmp;
  // Steps and checkpoints large enough that the second signal lands before the first one's exit.
  const std::string args = train_args(tmp, 100000) + " model.d_model=256 model.n_layers=4 train.batch_size=32";
  const fs::path run_file = tmp.path / "r" / "run.h5";
  const pid_t pid = start_training(args, run_file);
  REQUIRE(pid > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(kill(pid, SIGTERM) == 0);
  // Standard signals do not queue: a second SIGTERM sent while the first is
  // still pending merges with it. Wait until the first one's handler has run,
  // which shows as SIGTERM leaving the process's caught set (the handler
  // restores the default action), then send the second.
  bool handled = false;
  for (int i = 0; i < 100000 && !handled; ++i) {
    handled = !caught_signals(pid).test(SIGTERM - 1);
    if (!handled) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  REQUIRE(handled);
  REQUIRE(kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFSIGNALED(status));  // killed by the second signal, not exit 143 after a checkpoint
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGTERM);
  // Like a SIGKILL: the re-run resumes from what was committed.
  auto again = run_cli(train_args(tmp, 100000) + " model.d_model=256 model.n_layers=4 train.batch_size=32 --stop-after 1");
  CHECK(again.exit_code == 130);
}

TEST_CASE("a run resumed at its last step completes with its recorded summary, not zeros",
          "[cli][integration][signals]") {
  TempDir tmp;
  const std::string args = train_args(tmp, 20);
  REQUIRE(run_cli(args).exit_code == 0);
  const fs::path run_file = tmp.path / "r" / "run.h5";
  // The process that saved the final checkpoint died before committing the
  // run as complete: run.h5 still says running, with no summary yet.
  auto log = RunLog::load(run_file);
  const double last_ppl = log.column("eval", "val_ppl").back();
  REQUIRE(last_ppl > 1.0);
  log.set_attr("/", "status", std::string("running"));
  log.set_attr("/summary", "final_val_ppl", 0.0);
  log.set_attr("/summary", "ms_per_step_median", 0.0);
  log.commit();

  auto again = run_cli(args);
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  log = RunLog::load(run_file);
  CHECK(status_of(run_file) == "complete");
  CHECK(std::get<double>(*log.attr("/summary", "final_val_ppl")) == last_ppl);
  CHECK(std::get<double>(*log.attr("/summary", "ms_per_step_median")) > 0.0);
}

TEST_CASE("a second writer is refused while a run trains, naming the holder, and the lock dies with the process",
          "[cli][integration][lock]") {
  TempDir tmp;
  const std::string args = train_args(tmp, 100000);
  const fs::path run_file = tmp.path / "r" / "run.h5";
  const pid_t pid = start_training(args, run_file);
  REQUIRE(pid > 0);
  const auto before = status_of(run_file);
  auto second = run_cli(args);
  auto eval = run_cli("eval " + (tmp.path / "r").string() + " --context 32 --tokens 32");
  kill(pid, SIGKILL);  // no checkpoint, no commit: the lock must still go away
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(before == "running");
  CHECK(second.exit_code == 2);
  CHECK_THAT(second.output, Catch::Contains("in use by another attnlab process") &&
                                Catch::Contains("pid " + std::to_string(pid)));
  CHECK(eval.exit_code == 2);
  CHECK_THAT(eval.output, Catch::Contains("pid " + std::to_string(pid)));
  // After SIGKILL the directory is free again: a short run into it is refused
  // only for its different config, not for the lock.
  auto after = run_cli(train_args(tmp, 10));
  CHECK(after.exit_code == 2);
  CHECK_THAT(after.output, !Catch::Contains("in use by another"));
}
