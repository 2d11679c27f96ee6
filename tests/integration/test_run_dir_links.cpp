// Links planted in a run directory are never written or pruned through: a
// symlinked checkpoints/ is refused before training, and a link left at a
// temporary file's name is replaced, its target untouched.
#include <catch2/catch.hpp>

#include <fstream>

#include "test_support.h"

using attnlab::testing::run_cli;
using attnlab::testing::text_corpus;
using attnlab::test::TempDir;
namespace fs = std::filesystem;

namespace {
std::string args_for(const TempDir& tmp) {
  return "train" + text_corpus(tmp.path, "The earth was without form, and void ", 500) + " run.root=" + tmp.path.string() +
         " run.name=r model.max_seq_len=32 train.seq_len=32 train.steps=4 train.device=cpu";
}
std::string read(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("a symlinked checkpoints directory is refused and nothing outside the run is deleted",
          "[cli][integration][links]") {
  TempDir tmp;
  fs::create_directories(tmp.path / "elsewhere");
  std::ofstream(tmp.path / "elsewhere" / "step-0000001.pt") << "not yours";
  fs::create_directories(tmp.path / "r");
  fs::create_directory_symlink(tmp.path / "elsewhere", tmp.path / "r" / "checkpoints");
  auto r = run_cli(args_for(tmp));
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("checkpoints is a symbolic link"));
  CHECK(read(tmp.path / "elsewhere" / "step-0000001.pt") == "not yours");
}

TEST_CASE("links left at temporary file names are replaced, never written through", "[cli][integration][links]") {
  TempDir tmp;
  std::ofstream(tmp.path / "victim") << "keep me";
  fs::create_directories(tmp.path / "r");
  for (const char* name : {"config.yaml.tmp", "run.h5.tmp"})
    fs::create_symlink(tmp.path / "victim", tmp.path / "r" / name);
  fs::create_directories(tmp.path / "r" / "checkpoints");
  fs::create_symlink(tmp.path / "victim", tmp.path / "r" / "checkpoints" / "step-0000004.pt.tmp");
  auto r = run_cli(args_for(tmp));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(read(tmp.path / "victim") == "keep me");
  CHECK(fs::is_regular_file(fs::symlink_status(tmp.path / "r" / "config.yaml")));
  CHECK(fs::is_regular_file(fs::symlink_status(tmp.path / "r" / "run.h5")));
  CHECK(fs::is_regular_file(fs::symlink_status(tmp.path / "r" / "checkpoints" / "step-0000004.pt")));
}

TEST_CASE("a damaged run.h5 and a run.root that is a file are user errors (exit 2, named), not internal ones",
          "[cli][integration][links]") {
  TempDir tmp;
  const std::string args = args_for(tmp);
  REQUIRE(run_cli(args).exit_code == 0);
  std::ofstream(tmp.path / "r" / "run.h5", std::ios::trunc) << "this is not HDF5";
  auto damaged = run_cli(args);
  CHECK(damaged.exit_code == 2);
  CHECK_THAT(damaged.output, Catch::Contains("run.h5") && Catch::Contains("cannot read this run file"));
  CHECK_THAT(damaged.output, !Catch::Contains("internal error"));

  std::ofstream(tmp.path / "a-file") << "x";
  auto file_root = run_cli(args + " run.root=" + (tmp.path / "a-file").string());
  CHECK(file_root.exit_code == 2);
  CHECK_THAT(file_root.output, Catch::Contains("a-file") && Catch::Contains("cannot create the run directory") &&
                                   Catch::Contains("run.root"));
  CHECK_THAT(file_root.output, !Catch::Contains("internal error"));
  // A root where no directory can be made (as a read-only file system would, even for root).
  auto proc_root = run_cli(args + " run.root=/proc/attnlab-test-root");
  CHECK(proc_root.exit_code == 2);
  CHECK_THAT(proc_root.output, Catch::Contains("cannot create the run directory /proc/attnlab-test-root") &&
                                   !Catch::Contains("internal error"));
}
