// The crash loop (docs/reliability.md). A small run is killed, or has an I/O
// call fail, at every failpoint and several hit counts, and at random moments;
// after each crash the same command runs again until the run completes. Every
// curve and summary value of its run.h5 must then equal, bit for bit, the
// file an uninterrupted run writes; only timings, timestamps and the event
// history may differ. No temporary file may outlive a failed operation.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "core/failpoint.h"
#include "results/run_log.h"
#include "run_compare.h"
#include "test_support.h"

using attnlab::testing::checkpoint_names;
using attnlab::testing::differences;
using attnlab::testing::temporaries;
using attnlab::results::RunLog;
using attnlab::testing::CliResult;
using attnlab::testing::run_cli;
using attnlab::testing::status_of;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

namespace {

// One small run: 24 steps, a checkpoint every 4 (two kept), evaluations every
// 6 and logged rows every 2, so crashes land between every kind of write.
struct CrashRun {
  TempDir tmp;
  std::string args;
  fs::path dir;

  explicit CrashRun(int steps = 24) {
    dir = tmp.path / "runs" / "r";
    args = "train run.name=r run.root=" + (tmp.path / "runs").string() +
           text_corpus(tmp.path, "And God saw the light, that it was good ", 500) +
           " model=tiny model.max_seq_len=32 train.seq_len=32 train.batch_size=4 train.device=cpu train.threads=1" +
           " train.steps=" + std::to_string(steps) +
           " train.checkpoint_every=4 train.keep_checkpoints=2 train.eval_every=6 train.log_every=2"
           " train.eval_batches=2";
  }
  fs::path run_file() const { return dir / "run.h5"; }
};

// Runs the command with ATTNLAB_FAILPOINT set to `spec` (unset when empty).
CliResult run_armed(const std::string& args, const std::string& spec) {
  if (spec.empty()) ::unsetenv(attnlab::failpoint::kEnvironment);
  else ::setenv(attnlab::failpoint::kEnvironment, spec.c_str(), 1);
  auto r = run_cli(args);
  ::unsetenv(attnlab::failpoint::kEnvironment);
  return r;
}

bool killed(const CliResult& r) { return r.exit_code == 128 + SIGKILL || r.exit_code == -1; }

// Re-runs the command until it completes (at most a few times); returns the last result.
CliResult rerun_until_complete(const CrashRun& run) {
  CliResult r;
  for (int i = 0; i < 3; ++i) {
    r = run_cli(run.args);
    if (r.exit_code == 0) break;
  }
  return r;
}


}  // namespace

TEST_CASE("every failpoint killed or failed at several hits, then re-run: run.h5 equals the uninterrupted run's",
          "[reliability][integration]") {
  CrashRun run;
  REQUIRE(run_cli(run.args).exit_code == 0);  // the uninterrupted run
  const RunLog reference = RunLog::load(run.run_file());
  const auto reference_checkpoints = checkpoint_names(run.dir);
  REQUIRE(reference_checkpoints == std::vector<std::string>{"step-0000020.pt", "step-0000024.pt"});

  int fired = 0, not_reached = 0;
  std::map<std::string, int> fired_per_point;
  for (const auto name : attnlab::failpoint::kNames) {
    for (const std::string action : {"kill", "eio", "enospc"}) {
      for (int hit : {1, 2, 3, 6}) {
        const std::string spec = std::string(name) + ":" + std::to_string(hit) + ":" + action;
        INFO("ATTNLAB_FAILPOINT=" << spec);
        fs::remove_all(run.dir);
        const auto crashed = run_armed(run.args, spec);
        INFO("crashed run:\n" << crashed.output);
        if (crashed.exit_code == 0) {  // the run hits this point fewer times
          ++not_reached;
          continue;
        }
        ++fired;
        ++fired_per_point[std::string(name) + ":" + action];
        if (action == "kill") {
          CHECK(killed(crashed));
        } else {
          // An I/O error ends the run `failed`, exit 1, naming the file, leaving no temporary file.
          CHECK(crashed.exit_code == 1);
          CHECK_THAT(crashed.output, Catch::Contains(action == "eio" ? "Input/output error" : "No space left on device") &&
                                         Catch::Contains(run.dir.string()) && !Catch::Contains("internal error"));
          CHECK(temporaries(run.dir).empty());
          if (fs::exists(run.run_file())) CHECK(status_of(run.run_file()) == "failed");
        }
        const auto rerun = rerun_until_complete(run);
        INFO("re-run:\n" << rerun.output);
        REQUIRE(rerun.exit_code == 0);
        CHECK(status_of(run.run_file()) == "complete");
        CHECK(differences(reference, RunLog::load(run.run_file())).empty());
        CHECK(checkpoint_names(run.dir) == reference_checkpoints);
        CHECK(temporaries(run.dir).empty());
      }
    }
  }
  // Every failpoint and action fired at least once: none is dead code.
  for (const auto name : attnlab::failpoint::kNames)
    for (const std::string action : {"kill", "eio", "enospc"})
      CHECK(fired_per_point[std::string(name) + ":" + action] > 0);
  std::cout << "crash loop: survived " << fired << " failpoint crashes (" << attnlab::failpoint::kNames.size()
            << " failpoints x kill/eio/enospc x hits 1, 2, 3, 6; " << not_reached
            << " not reached by this run) with bitwise-equal run files" << std::endl;
}

namespace {

// SIGKILLs the run at random moments, re-running after each, until `seconds`
// have passed; every run that completes is compared with the reference.
void random_kill_loop(double seconds, uint64_t seed) {
  CrashRun run(/*steps=*/40);
  REQUIRE(run_cli(run.args).exit_code == 0);
  const RunLog reference = RunLog::load(run.run_file());
  const auto reference_checkpoints = checkpoint_names(run.dir);
  fs::remove_all(run.dir);

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> delay_ms(0, 900);  // start-up included: about one run's length
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int kills = 0, completed = 0;
  const fs::path log_file = run.tmp.path / "attnlab.log";
  while (std::chrono::steady_clock::now() < deadline || kills == 0) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const std::string command = "cd '" ATTNLAB_SOURCE_DIR "' && exec '" ATTNLAB_BINARY "' " + run.args + " > '" +
                                  log_file.string() + "' 2>&1";
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status)) {
      ++kills;
      continue;
    }
    INFO("attnlab output:\n" << attnlab::test::read_bytes(log_file));
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);  // it finished before the kill came
    ++completed;
    CHECK(status_of(run.run_file()) == "complete");
    const auto diff = differences(reference, RunLog::load(run.run_file()));
    INFO("differences: " << diff.size() << (diff.empty() ? "" : " first: " + diff.front()));
    CHECK(diff.empty());
    CHECK(checkpoint_names(run.dir) == reference_checkpoints);
    CHECK(temporaries(run.dir).empty());
    fs::remove_all(run.dir);  // and again
  }
  std::cout << "random kill loop: survived " << kills << " SIGKILLs over " << completed
            << " completed runs, each bitwise equal to the uninterrupted run" << std::endl;
  CHECK(completed > 0);
}

double seconds_from_env(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v ? std::atof(v) : fallback;
}

}  // namespace

TEST_CASE("random SIGKILLs each followed by a re-run: every completed run.h5 equals the uninterrupted run's",
          "[reliability][integration]") {
  random_kill_loop(seconds_from_env("ATTNLAB_CRASH_SECONDS", 45), 20261123);
}

TEST_CASE("random SIGKILLs for five minutes (slow)", "[reliability][integration][.slow]") {
  random_kill_loop(seconds_from_env("ATTNLAB_CRASH_SECONDS", 300), 7);
}
