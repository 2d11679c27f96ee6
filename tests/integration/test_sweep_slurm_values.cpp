// Slurm values are data, never script: every launcher field that reaches the
// batch script refuses a newline or control character (and partitions and
// times anything outside Slurm's characters), naming the flag and its key,
// before anything is written; valid values give a script whose lines are
// exactly the ones attnlab writes.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "sweep/manifest.h"
#include "sweep/slurm.h"
#include "test_support.h"

using namespace attnlab;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;
using attnlab::testing::run_cli;

namespace {

sweep::Manifest one_run_manifest(const std::filesystem::path& dir) {
  sweep::Manifest m;
  m.experiment = "quickstart";
  m.runs.push_back({0, "mha-s0-abcdef", dir / "mha-s0-abcdef", {"attention=mha"}});
  return m;
}

std::string refusal(const sweep::SlurmOptions& o, const std::string& experiment = "quickstart") {
  try {
    sweep::check_slurm_options(o, experiment, "results/quickstart");
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("every launcher field refuses what would inject a line into the batch script", "[sweep][slurm]") {
  const std::vector<std::string> injections = {"gpu\n#SBATCH --account=other", "gpu\nrm -rf ~", "gpu\r", "a\x1b[2J",
                                               std::string("a\0b", 3), "x\t--mem=1T"};
  for (const auto& bad : injections) {
    INFO("value " << bad);
    sweep::SlurmOptions partition;
    partition.partition = bad;
    CHECK_THAT(refusal(partition), Catch::Contains("--partition (launcher.partition)"));
    sweep::SlurmOptions time;
    time.time = "04:00:00" + bad;
    CHECK_THAT(refusal(time), Catch::Contains("--time (launcher.time)"));
    sweep::SlurmOptions extra;
    extra.sbatch = {"--account=lab", "--comment=" + bad};
    if (bad.find_first_of(std::string("\n\r\x1b\t\0", 5)) != std::string::npos)
      CHECK_THAT(refusal(extra), Catch::Contains("--sbatch (launcher.sbatch)"));
    CHECK_THAT(refusal({}, "quick" + bad), Catch::Contains("experiment name"));
  }
  sweep::SlurmOptions spaces;
  spaces.partition = "gpu --account=other";  // a space would pass a second option on the #SBATCH line
  CHECK_THAT(refusal(spaces), Catch::Contains("--partition"));
  sweep::SlurmOptions not_option;
  not_option.sbatch = {"account=lab"};
  CHECK_THAT(refusal(not_option), Catch::Contains("not an sbatch option"));
  // The message shows the control character escaped, not raw.
  sweep::SlurmOptions shown;
  shown.partition = "gpu\nX";
  CHECK_THAT(refusal(shown), Catch::Contains("gpu\\x0aX"));
}

TEST_CASE("valid Slurm values pass and the script has only attnlab's own lines", "[sweep][slurm]") {
  TempDir tmp;
  sweep::SlurmOptions o;
  o.partition = "gpu,gpu-long";
  o.time = "1-00:00:00";
  o.sbatch = {"--account=lab-1", "--qos=high"};
  CHECK(refusal(o).empty());
  o.time = "UNLIMITED";
  CHECK(refusal(o).empty());
  const auto script = sweep::sbatch_script(tmp.path / "quickstart", one_run_manifest(tmp.path),
                                           {"/bin/attnlab", "sweep", "x.yaml", "a=1; echo hi"}, o);
  std::istringstream lines(script);
  int sbatch_lines = 0;
  for (std::string line; std::getline(lines, line);) sbatch_lines += line.starts_with("#SBATCH ");
  CHECK(sbatch_lines == 12);  // job name, array, ntasks+cpus (2), partition, time, output, open-mode, requeue, signal, 2 extra
  // An override with shell syntax reaches attnlab as one quoted word.
  CHECK_THAT(script, Catch::Contains("'a=1; echo hi'"));
}

TEST_CASE("attnlab sweep --launcher slurm refuses an injected value with exit 2 and writes nothing",
          "[sweep][slurm][cli]") {
  TempDir tmp;
  write_bytes(tmp.path / "exp.yaml", "# @package _global_\nrun:\n  name: inject\ntrain:\n  steps: 2\nsweep:\n  seed: 0,1\n");
  // The shell's printf puts a real newline into the argument.
  for (const std::string flag : {"--partition \"$(printf 'gpu\\n#SBATCH --account=x')\"",
                                 "--time \"$(printf '1:00\\necho hi')\"",
                                 "--sbatch=\"$(printf -- '--account=a\\ntouch pwned')\"",
                                 "\"launcher.partition=$(printf 'gpu\\nx')\""}) {
    INFO(flag);
    const auto r = run_cli("sweep " + (tmp.path / "exp.yaml").string() + " --launcher slurm run.root=" +
                           (tmp.path / "results").string() + " " + flag);
    INFO(r.output);
    CHECK(r.exit_code == 2);
    const std::string name = flag.starts_with("\"launcher.") ? "launcher.partition" : flag.substr(0, flag.find_first_of(" ="));
    CHECK_THAT(r.output, Catch::Contains(name));
    CHECK_FALSE(std::filesystem::exists(tmp.path / "results"));
    CHECK_FALSE(std::filesystem::exists(tmp.path / "pwned"));
  }
}
