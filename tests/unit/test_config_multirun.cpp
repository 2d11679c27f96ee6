// Multirun planning: cartesian products, zip pairing, range, glob, sweeps in
// experiment files, run ids, and a bad job failing the whole plan up front.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "config/multirun.h"
#include "config_test_util.h"

using namespace attnlab;
using namespace attnlab::test;
using attnlab::config::Job;

namespace {

std::vector<Job> plan(std::vector<std::string> overrides, fs::path config_dir = source_configs()) {
  config::ComposeRequest request;
  request.config_dir = std::move(config_dir);
  request.overrides = std::move(overrides);
  return config::plan_multirun(request);
}

std::vector<std::vector<std::string>> overrides_of(const std::vector<Job>& jobs) {
  std::vector<std::vector<std::string>> out;
  for (const auto& j : jobs) out.push_back(j.overrides);
  return out;
}

}  // namespace

TEST_CASE("a cartesian product, last dimension fastest, fixed overrides kept in place", "[config][multirun]") {
  auto jobs = plan({"attention=mha,mqa", "model.n_layers=3", "seed=0,1"});
  using V = std::vector<std::string>;
  CHECK(overrides_of(jobs) == std::vector<V>{{"attention=mha", "model.n_layers=3", "seed=0"},
                                             {"attention=mha", "model.n_layers=3", "seed=1"},
                                             {"attention=mqa", "model.n_layers=3", "seed=0"},
                                             {"attention=mqa", "model.n_layers=3", "seed=1"}});
  CHECK_THAT(jobs[0].run_id, Catch::StartsWith("mha-s0-"));
  CHECK_THAT(jobs[3].run_id, Catch::StartsWith("mqa-s1-"));
}

TEST_CASE("zip pairs its lists instead of crossing them", "[config][multirun]") {
  auto jobs = plan({"zip(attention=[mha,gqa,mqa],attention.n_kv_heads=[4,2,1])", "seed=range(0,2)"});
  REQUIRE(jobs.size() == 6);
  CHECK(jobs[2].overrides == std::vector<std::string>{"attention=gqa", "attention.n_kv_heads=2", "seed=0"});
  CHECK(jobs[5].overrides == std::vector<std::string>{"attention=mqa", "attention.n_kv_heads=1", "seed=1"});
  CHECK(std::regex_match(jobs[2].run_id, std::regex("gqa-k2-s0-[0-9a-f]{6}")));
}

TEST_CASE("range, choice and glob over a group's options", "[config][multirun]") {
  auto seeds = plan({"seed=range(0,6,2)"});
  REQUIRE(seeds.size() == 3);
  CHECK(seeds[2].overrides[0] == "seed=4");
  CHECK(plan({"model.n_layers=choice(1,2)"}).size() == 2);
  auto positions = plan({"position=glob(*)"});
  std::vector<std::string> chosen;
  for (const auto& j : positions) chosen.push_back(j.overrides[0]);
  CHECK(chosen == std::vector<std::string>{"position=alibi", "position=learned", "position=none", "position=rope"});
  auto m = plan({"attention=glob(m*)", "position=none", "attention.rope_mode=none"});
  REQUIRE(m.size() == 3);  // mha, mla, mqa
  CHECK(m[1].overrides[0] == "attention=mla");
}

TEST_CASE("run ids are stable, order-independent and safe", "[config][multirun]") {
  auto a = config::make_run_id({"attention=gqa", "seed=0"}, {"attention=gqa"});
  auto b = config::make_run_id({"seed=0", "attention=gqa"}, {"attention=gqa"});
  CHECK(a == b);
  CHECK(a != config::make_run_id({"attention=gqa", "seed=1"}, {"attention=gqa"}));
  auto odd = config::make_run_id({"run.root='a b/../c'", "optim.betas=[0.9,0.99]"}, {});
  CHECK(std::regex_match(odd, std::regex("[A-Za-z0-9._=-]+")));
  CHECK(config::make_run_id({}, {}).rfind("run-", 0) == 0);
  std::set<std::string> ids;
  for (const auto& j : plan({"seed=range(0,20)"})) ids.insert(j.run_id);
  CHECK(ids.size() == 20);
}

TEST_CASE("a bad job fails the whole plan before anything runs", "[config][multirun]") {
  config::ComposeRequest request;
  request.config_dir = source_configs();
  request.overrides = {"attention=mha,gqa", "attention.n_kv_heads=2"};
  try {
    config::plan_multirun(request);
    FAIL("expected a UserError");
  } catch (const UserError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].key == "attention.n_kv_heads");
    CHECK_THAT(e.diagnostics()[0].message, Catch::Contains("[job 1 of 2: mha-"));
  }
  request.overrides = {"seed=1,1"};
  CHECK_THROWS_WITH(config::plan_multirun(request), Catch::Contains("jobs 1 and 2 have the same overrides"));
  request.overrides = {"seed=glob(*)"};
  CHECK_THROWS_WITH(config::plan_multirun(request), Catch::Contains("'seed' is not one"));
  request.overrides = {"attention=glob(z*)"};
  CHECK_THROWS_WITH(config::plan_multirun(request), Catch::Contains("matches no option"));
  request.overrides = {"seed=range(0,100)", "model.n_layers=range(1,200)"};
  CHECK_THROWS_WITH(config::plan_multirun(request), Catch::Contains("more than 10000 jobs"));
}

TEST_CASE("an experiment's sweep block expands, and the command line replaces its keys", "[config][multirun]") {
  TempDir dir;
  write_minimal_configs(dir);
  dir.write("experiments/s.yaml",
            "# @package _global_\nsweep:\n  attention: mha,gqa\n  seed: [0, 1, 2]\nmodel:\n  n_layers: 1\n");
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  request.overrides = {"+experiment=s"};
  auto jobs = config::plan_multirun(request);
  REQUIRE(jobs.size() == 6);
  CHECK(jobs[4].overrides == std::vector<std::string>{"attention=gqa", "seed=1", "+experiment=s"});
  request.overrides = {"+experiment=s", "seed=7"};
  CHECK(config::plan_multirun(request).size() == 2);
}

TEST_CASE("seeds: N gives seeds 0..N-1, a list gives those, zip pairs stay paired, and the command line wins",
          "[config][multirun]") {
  TempDir dir;
  write_minimal_configs(dir);
  dir.write("experiments/n.yaml", "# @package _global_\nsweep:\n  attention: mha,gqa\n  seeds: 3\n");
  dir.write("experiments/l.yaml", "# @package _global_\nsweep:\n  seeds: [5, 9]\n");
  dir.write("experiments/bad.yaml", "# @package _global_\nsweep:\n  seeds: many\n");
  const fs::path configs = dir.path() / "configs";
  CHECK(overrides_of(plan({"+experiment=n"}, configs)) ==
        std::vector<std::vector<std::string>>{{"attention=mha", "seed=0", "+experiment=n"},
                                              {"attention=mha", "seed=1", "+experiment=n"},
                                              {"attention=mha", "seed=2", "+experiment=n"},
                                              {"attention=gqa", "seed=0", "+experiment=n"},
                                              {"attention=gqa", "seed=1", "+experiment=n"},
                                              {"attention=gqa", "seed=2", "+experiment=n"}});
  CHECK(overrides_of(plan({"+experiment=l"}, configs)) ==
        std::vector<std::vector<std::string>>{{"seed=5", "+experiment=l"}, {"seed=9", "+experiment=l"}});
  // Overrides on top: a seed on the command line replaces the seeds; a zip
  // of two keys is one dimension crossed with the seeds.
  CHECK(plan({"+experiment=n", "seed=4"}, configs).size() == 2);
  const auto zipped = overrides_of(plan({"+experiment=l", "zip(model.n_layers=[1,2],model.d_model=[32,64])"}, configs));
  CHECK(zipped.size() == 4);
  CHECK_THROWS_WITH(plan({"+experiment=bad"}, configs), Catch::Contains("sweep.seeds"));
}

TEST_CASE("the dry-run listing shows one job per line", "[config][multirun]") {
  auto jobs = plan({"attention=mha,mqa"});
  std::string text = config::format_dry_run(jobs);
  CHECK(text == "[1/2] " + jobs[0].run_id + "  attention=mha\n[2/2] " + jobs[1].run_id + "  attention=mqa\n");
}

TEST_CASE("a union: lists sweeps whose runs follow one another, crossed with the block's other keys",
          "[config][multirun]") {
  TempDir dir;
  write_minimal_configs(dir);
  // Each variant at its own cache sizes: MHA once, GQA at two head counts,
  // then one more member in flow style; every one of those at two seeds.
  dir.write("experiments/u.yaml",
            "# @package _global_\n"
            "sweep:\n"
            "  union:\n"
            "    - attention: mha\n"
            "    - attention: gqa\n"
            "      attention.n_kv_heads: [1, 2]\n"
            "    - {attention: mha, model.n_layers: 1}\n"
            "  seeds: 2\n");
  dir.write("experiments/bad_union.yaml", "# @package _global_\nsweep:\n  union: mha\n");
  dir.write("experiments/bad_member.yaml", "# @package _global_\nsweep:\n  union:\n    - attention: mha\n    - [1, 2]\n");
  const fs::path configs = dir.path() / "configs";
  using V = std::vector<std::string>;
  const auto jobs = plan({"+experiment=u"}, configs);
  CHECK(overrides_of(jobs) == std::vector<V>{{"attention=mha", "seed=0", "+experiment=u"},
                                             {"attention=mha", "seed=1", "+experiment=u"},
                                             {"attention=gqa", "attention.n_kv_heads=1", "seed=0", "+experiment=u"},
                                             {"attention=gqa", "attention.n_kv_heads=1", "seed=1", "+experiment=u"},
                                             {"attention=gqa", "attention.n_kv_heads=2", "seed=0", "+experiment=u"},
                                             {"attention=gqa", "attention.n_kv_heads=2", "seed=1", "+experiment=u"},
                                             {"attention=mha", "model.n_layers=1", "seed=0", "+experiment=u"},
                                             {"attention=mha", "model.n_layers=1", "seed=1", "+experiment=u"}});
  // Every value a member sets names its runs, fixed or swept.
  CHECK(std::regex_match(jobs[0].run_id, std::regex("mha-s0-[0-9a-f]{6}")));
  CHECK(std::regex_match(jobs[4].run_id, std::regex("gqa-k2-s0-[0-9a-f]{6}")));
  // A key set on the command line leaves every member; members it makes equal run once.
  CHECK(overrides_of(plan({"+experiment=u", "attention.n_kv_heads=1", "seed=3", "attention=gqa"}, configs)) ==
        std::vector<V>{{"+experiment=u", "attention.n_kv_heads=1", "seed=3", "attention=gqa"},
                       {"model.n_layers=1", "+experiment=u", "attention.n_kv_heads=1", "seed=3", "attention=gqa"}});
  CHECK(plan({"+experiment=u", "seed=0"}, configs).size() == 4);
  try {
    plan({"+experiment=bad_union"}, configs);
    FAIL("expected a UserError");
  } catch (const UserError& e) {
    REQUIRE(e.diagnostics().size() == 1);
    CHECK(e.diagnostics()[0].key == "sweep.union");
    CHECK_THAT(e.diagnostics()[0].origin, Catch::Contains("bad_union.yaml:3"));
  }
  CHECK_THROWS_WITH(plan({"+experiment=bad_member"}, configs), Catch::Contains("sweep.union[1]"));
}
