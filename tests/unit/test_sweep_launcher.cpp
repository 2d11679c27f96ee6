// The launcher config group of `attnlab sweep`: a group file, the
// experiment's launcher: block and launcher.KEY=VALUE overrides, in that
// order; clear errors naming the file and line or the override; and a
// launcher override is never part of a run.
#include <catch2/catch.hpp>

#include "config/compose.h"
#include "config_test_util.h"
#include "sweep/launcher.h"

using namespace attnlab;
using namespace attnlab::test;
using sweep::resolve_launcher;

namespace {

// The message of the one problem a call reports.
template <class F>
Diagnostic problem_of(F&& f) {
  try {
    f();
  } catch (const UserError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    return e.diagnostics()[0];
  }
  FAIL("expected a UserError");
  return {};
}

}  // namespace

TEST_CASE("the launcher: local by default, slurm from its group file, and a cluster file of one's own",
          "[sweep][launcher]") {
  TempDir dir;
  dir.write("exp.yaml", "# @package _global_\nsweep:\n  seed: 0,1\n");
  const fs::path exp = dir.path() / "exp.yaml";
  const auto local = resolve_launcher(source_configs(), exp, {});
  CHECK(local.type == "local");
  CHECK(local.name == "local");
  CHECK(local.jobs == sweep::LauncherConfig{}.jobs);
  CHECK(resolve_launcher(source_configs(), exp, {"launcher=slurm"}).type == "slurm");
  CHECK(resolve_launcher(source_configs(), exp, {}, "slurm").type == "slurm");

  // A cluster's file, an experiment's block on top, then overrides on top of both.
  write_minimal_configs(dir);
  dir.write("configs/launcher/mycluster.yaml",
            "type: slurm\npartition: gpu\ntime: \"04:00:00\"\ncpus_per_task: 8\nsbatch: [--account=lab, --qos=low]\n");
  dir.write("exp2.yaml", "# @package _global_\nlauncher:\n  time: \"01:00:00\"\n  max_parallel: 3\n  jobs: 2\n");
  const auto c = resolve_launcher(dir.path() / "configs", dir.path() / "exp2.yaml",
                                  {"launcher=mycluster", "launcher.max_parallel=5", "launcher.devices=[0,1]"});
  CHECK(c.name == "mycluster");
  CHECK(c.type == "slurm");
  CHECK(c.slurm.partition == "gpu");
  CHECK(c.slurm.time == "01:00:00");   // the experiment over the file
  CHECK(c.slurm.max_parallel == 5);    // the override over the experiment
  CHECK(c.slurm.cpus_per_task == 8);
  CHECK(c.slurm.sbatch == std::vector<std::string>{"--account=lab", "--qos=low"});
  CHECK(c.jobs == 2);                  // a local key: kept, unused by Slurm
  CHECK(c.devices == std::vector<std::string>{"0", "1"});
  CHECK(c.slurm.signal_seconds == sweep::SlurmOptions{}.signal_seconds);  // not set anywhere
}

TEST_CASE("launcher mistakes name the key and where it was written", "[sweep][launcher]") {
  TempDir dir;
  write_minimal_configs(dir);
  dir.write("configs/launcher/local.yaml", "type: local\n");
  dir.write("configs/launcher/bad.yaml", "type: local\njobz: 2\n");
  dir.write("exp.yaml", "# @package _global_\nlauncher:\n  jobs: 0\n");
  dir.write("plain.yaml", "# @package _global_\n");
  const fs::path configs = dir.path() / "configs", exp = dir.path() / "exp.yaml", plain = dir.path() / "plain.yaml";

  auto d = problem_of([&] { resolve_launcher(configs, exp, {}); });
  CHECK(d.key == "launcher.jobs");
  CHECK_THAT(d.origin, Catch::EndsWith("exp.yaml:3"));
  CHECK_THAT(d.message, Catch::Contains(">= 1"));

  d = problem_of([&] { resolve_launcher(configs, plain, {"launcher=bad"}); });
  CHECK(d.key == "launcher.jobz");
  CHECK_THAT(d.origin, Catch::EndsWith("bad.yaml:2"));
  CHECK_THAT(d.message, Catch::Contains("signal_seconds"));  // lists the keys it takes

  d = problem_of([&] { resolve_launcher(configs, plain, {"launcher=nope"}); });
  CHECK(d.key == "launcher");
  CHECK_THAT(d.message, Catch::Contains("options: bad, local"));

  d = problem_of([&] { resolve_launcher(configs, plain, {"launcher.cpus_per_task=many"}); });
  CHECK(d.key == "launcher.cpus_per_task");
  CHECK(d.origin == "override 'launcher.cpus_per_task=many'");

  d = problem_of([&] { resolve_launcher(configs, plain, {"launcher.type=pbs"}); });
  CHECK_THAT(d.message, Catch::Contains("expected local or slurm"));

  d = problem_of([&] { resolve_launcher(configs, plain, {"launcher=local"}, "bad"); });
  CHECK_THAT(d.message, Catch::Contains("choose the launcher once"));
}

TEST_CASE("launcher overrides are taken out of a sweep's overrides and refused by a run", "[sweep][launcher]") {
  std::vector<std::string> overrides = {"attention=mla", "launcher=slurm", "seed=1", "launcher.time=01:00:00"};
  CHECK(sweep::take_launcher_overrides(overrides) == std::vector<std::string>{"launcher=slurm", "launcher.time=01:00:00"});
  CHECK(overrides == std::vector<std::string>{"attention=mla", "seed=1"});

  config::ComposeRequest request;
  request.config_dir = source_configs();
  request.overrides = {"launcher.jobs=2"};
  const auto d = problem_of([&] { config::compose(request); });
  CHECK(d.key == "launcher.jobs");
  CHECK_THAT(d.message, Catch::Contains("attnlab sweep"));
}
