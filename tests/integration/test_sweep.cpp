// `attnlab sweep` with the local launcher and `attnlab collect`: a manifest,
// parallel workers with one log per run, evaluations after training,
// re-running skips what is done, failures are reported at the end without
// stopping the others, a changed experiment is refused unless --extend, and
// collect aggregates seeds into byte-identical tables.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <optional>
#include <sstream>
#include <thread>

#include "results/run_log.h"
#include "run_compare.h"
#include "sweep/manifest.h"
#include "test_support.h"

using attnlab::results::RunLog;
using attnlab::testing::run_cli;
using attnlab::testing::status_of;
using attnlab::test::read_bytes;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;
namespace fs = std::filesystem;

namespace {

// A 2 x 2 sweep (attention x seeds) of 20-step runs, evaluated at 32 and 64 tokens.
std::string experiment(const fs::path& dir, const std::string& sweep_extra = "", int seeds = 2) {
  std::string corpus;
  for (int i = 0; i < 600; ++i) corpus += "And God called the light Day " + std::to_string(i) + ".\n";
  write_bytes(dir / "corpus.txt", corpus);
  return "# @package _global_\n"
         "defaults:\n  - override /model: tiny\n  - override /train: cpu\n"
         "run:\n  root: " + (dir / "results").string() + "\n"
         "data:\n  kind: text\n  path: " + (dir / "corpus.txt").string() + "\n  dir: " + (dir / "data").string() + "\n"
         "model:\n  max_seq_len: 32\n"
         "train:\n  steps: 20\n  seq_len: 32\n  batch_size: 4\n  threads: 1\n  eval_every: 10\n"
         "  checkpoint_every: 10\n  eval_batches: 2\n"
         "sweep:\n  attention: mha,mqa\n  seeds: " + std::to_string(seeds) + "\n" + sweep_extra +
         "eval:\n  context: [32, 64]\n";
}

std::vector<std::vector<std::string>> read_csv(const fs::path& file) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read_bytes(file));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream l(line);
    for (std::string cell; std::getline(l, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

// Runs `sweep` (which must succeed) and returns the manifest it wrote in sweep_dir.
std::optional<attnlab::sweep::Manifest> run_sweep(const std::string& sweep, const fs::path& sweep_dir) {
  const auto result = run_cli(sweep);
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
  auto manifest = attnlab::sweep::read_manifest(sweep_dir / "sweep.yaml");
  REQUIRE(manifest.has_value());
  return manifest;
}

// The file's inode: a run.h5 rewritten (always through a new file and a rename) gets a new one.
ino_t inode(const fs::path& file) {
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  return st.st_ino;
}

size_t column(const std::vector<std::string>& header, const std::string& name) {
  const auto it = std::find(header.begin(), header.end(), name);
  REQUIRE(it != header.end());
  return static_cast<size_t>(it - header.begin());
}

}  // namespace

TEST_CASE("a sweep runs every row in parallel with one log each, evaluates it, and a re-run changes nothing",
          "[sweep][integration]") {
  TempDir tmp;
  write_bytes(tmp.path / "exp.yaml", experiment(tmp.path));
  const auto first = run_cli("sweep " + (tmp.path / "exp.yaml").string() + " --jobs 2");
  INFO(first.output);
  REQUIRE(first.exit_code == 0);

  const fs::path sweep_dir = tmp.path / "results" / "exp";
  const auto manifest = attnlab::sweep::read_manifest(sweep_dir / "sweep.yaml");
  REQUIRE(manifest.has_value());
  REQUIRE(manifest->runs.size() == 4);
  std::map<std::string, std::string> before;
  for (const auto& r : manifest->runs) {
    INFO(r.id);
    CHECK(r.dir.parent_path() == sweep_dir);
    const auto log = RunLog::load(r.dir / "run.h5");
    CHECK(std::get<std::string>(*log.attr("/", "status")) == "complete");
    CHECK(log.column("eval/context", "context") == std::vector<double>{32, 64});
    CHECK(fs::file_size(r.dir / "train.log") > 0);
    before[r.id] = read_bytes(r.dir / "run.h5");
  }
  // Seeds 0 and 1 of each attention kind.
  std::multiset<std::string> seeds;
  for (const auto& r : manifest->runs)
    for (const auto& o : r.overrides)
      if (o.starts_with("seed=")) seeds.insert(o);
  CHECK(seeds == std::multiset<std::string>{"seed=0", "seed=0", "seed=1", "seed=1"});

  const auto again = run_cli("sweep " + (tmp.path / "exp.yaml").string() + " --jobs 2");
  CHECK(again.exit_code == 0);
  for (const auto& r : manifest->runs) CHECK(read_bytes(r.dir / "run.h5") == before[r.id]);  // nothing re-run

  // collect: one row per run, mean and sample std over the two seeds, byte-identical when run again.
  REQUIRE(run_cli("collect " + sweep_dir.string()).exit_code == 0);
  const std::string csv = read_bytes(sweep_dir / "summary.csv");
  const std::string h5 = read_bytes(sweep_dir / "summary.h5");
  REQUIRE(run_cli("collect " + sweep_dir.string()).exit_code == 0);
  CHECK(read_bytes(sweep_dir / "summary.csv") == csv);
  CHECK(read_bytes(sweep_dir / "summary.h5") == h5);

  const auto runs = read_csv(sweep_dir / "summary.csv");
  REQUIRE(runs.size() == 5);
  const auto configs = read_csv(sweep_dir / "summary_configs.csv");
  REQUIRE(configs.size() == 3);
  const size_t att = column(configs[0], "attention"), n = column(configs[0], "n"),
               mean = column(configs[0], "final_val_ppl_mean"), sd = column(configs[0], "final_val_ppl_std"),
               kv = column(configs[0], "kv_bytes_per_token_mean");
  for (size_t c = 1; c < configs.size(); ++c) {
    const std::string kind = configs[c][att];
    INFO(kind);
    std::vector<double> ppl;
    int64_t kv_bytes = 0;
    for (const auto& r : manifest->runs) {
      if (std::find(r.overrides.begin(), r.overrides.end(), "attention=" + kind) == r.overrides.end()) continue;
      const auto log = RunLog::load(r.dir / "run.h5");
      ppl.push_back(std::get<double>(*log.attr("/summary", "final_val_ppl")));
      kv_bytes = std::get<int64_t>(*log.attr("/model", "kv_bytes_per_token"));
    }
    REQUIRE(ppl.size() == 2);
    CHECK(configs[c][n] == "2");
    CHECK(std::stod(configs[c][mean]) == Approx((ppl[0] + ppl[1]) / 2).epsilon(1e-9));
    CHECK(std::stod(configs[c][sd]) == Approx(std::abs(ppl[0] - ppl[1]) / std::sqrt(2.0)).epsilon(1e-8));
    CHECK(std::stod(configs[c][kv]) == static_cast<double>(kv_bytes));
  }
}

TEST_CASE("a failed run does not stop the sweep: it is listed at the end with its log, and the exit is 1",
          "[sweep][integration]") {
  TempDir tmp;
  // The second corpus is too small to split into train and validation text:
  // those runs fail when they prepare their data, after planning.
  write_bytes(tmp.path / "exp.yaml", experiment(tmp.path, "", 1));
  write_bytes(tmp.path / "tiny.txt", "one line without a break");
  const auto r = run_cli("sweep " + (tmp.path / "exp.yaml").string() + " --jobs 2 data.path=" +
                         (tmp.path / "corpus.txt").string() + "," + (tmp.path / "tiny.txt").string());
  INFO(r.output);
  CHECK(r.exit_code == 1);
  const auto manifest = attnlab::sweep::read_manifest(tmp.path / "results" / "exp" / "sweep.yaml");
  REQUIRE(manifest.has_value());
  REQUIRE(manifest->runs.size() == 4);
  int complete = 0, failed = 0;
  for (const auto& run : manifest->runs) {
    const bool missing = std::find(run.overrides.begin(), run.overrides.end(),
                                   "data.path=" + (tmp.path / "tiny.txt").string()) != run.overrides.end();
    if (missing) {
      ++failed;
      CHECK_THAT(r.output, Catch::Contains((run.dir / "train.log").string()));
      CHECK_THAT(read_bytes(run.dir / "train.log"), Catch::Contains("data.path"));
    } else {
      ++complete;
      CHECK(std::get<std::string>(*RunLog::load(run.dir / "run.h5").attr("/", "status")) == "complete");
    }
  }
  CHECK(complete == 2);
  CHECK(failed == 2);
}

TEST_CASE("a changed experiment is refused, naming the runs, and --extend appends new runs after the old ones",
          "[sweep][integration]") {
  TempDir tmp;
  const std::string file = (tmp.path / "exp.yaml").string();
  write_bytes(tmp.path / "exp.yaml", experiment(tmp.path));
  REQUIRE(run_cli("sweep " + file + " --dry-run").exit_code == 0);
  REQUIRE(run_cli("sweep " + file + " --jobs 2").exit_code == 0);
  const auto old = attnlab::sweep::read_manifest(tmp.path / "results" / "exp" / "sweep.yaml");
  REQUIRE(old.has_value());

  write_bytes(tmp.path / "exp.yaml", experiment(tmp.path, "", 3));  // a third seed: two new runs
  const auto refused = run_cli("sweep " + file);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("2 new run(s)") && Catch::Contains("--extend"));
  CHECK(attnlab::sweep::read_manifest(tmp.path / "results" / "exp" / "sweep.yaml")->runs.size() == 4);

  const auto extended = run_cli("sweep " + file + " --extend --jobs 2");
  INFO(extended.output);
  REQUIRE(extended.exit_code == 0);
  const auto now = attnlab::sweep::read_manifest(tmp.path / "results" / "exp" / "sweep.yaml");
  REQUIRE(now->runs.size() == 6);
  for (size_t i = 0; i < 4; ++i) CHECK(now->runs[i].id == old->runs[i].id);  // array indices stay valid
  for (size_t i = 4; i < 6; ++i) {
    CHECK(now->runs[i].index == static_cast<int64_t>(i));
    CHECK(std::get<std::string>(*RunLog::load(now->runs[i].dir / "run.h5").attr("/", "status")) == "complete");
  }

  write_bytes(tmp.path / "exp.yaml", experiment(tmp.path, "", 1));  // seed 1 and 2 gone: never allowed
  const auto shrunk = run_cli("sweep " + file + " --extend");
  CHECK(shrunk.exit_code == 2);
  CHECK_THAT(shrunk.output, Catch::Contains("4 run(s) no longer in it"));
}

TEST_CASE("a sweep stopped part way by SIGTERM, or by Ctrl-C to its process group, checkpoints every worker, "
          "resumes only what is missing and equals an uninterrupted sweep",
          "[sweep][integration]") {
  // A terminal's Ctrl-C sends SIGINT to the whole foreground process group:
  // the sweep and, unless they have a group of their own, its workers, which
  // then saw a second signal when the sweep passed it on and stopped without
  // a checkpoint, leaving run.h5 at "running".
  const bool to_group = GENERATE(false, true);
  const int signo = to_group ? SIGINT : SIGTERM;
  INFO((to_group ? "SIGINT to the process group" : "SIGTERM to the sweep"));
  TempDir tmp;
  const std::string file = (tmp.path / "exp.yaml").string();
  // Longer runs, so that SIGTERM finds workers mid-run.
  std::string text = experiment(tmp.path);
  text.replace(text.find("steps: 20"), 9, "steps: 200");
  write_bytes(tmp.path / "exp.yaml", text);
  REQUIRE(run_cli("sweep " + file + " --jobs 2").exit_code == 0);  // the uninterrupted sweep
  const fs::path sweep_dir = tmp.path / "results" / "exp";
  const auto manifest = attnlab::sweep::read_manifest(sweep_dir / "sweep.yaml");
  REQUIRE(manifest.has_value());
  std::map<std::string, RunLog> reference;
  for (const auto& r : manifest->runs) reference.emplace(r.id, RunLog::load(r.dir / "run.h5"));
  fs::remove_all(sweep_dir);

  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::setpgid(0, 0);  // the sweep leads a group, as a shell's foreground job does
    const std::string command = "cd '" ATTNLAB_SOURCE_DIR "' && exec '" ATTNLAB_BINARY "' sweep " + file +
                                " --jobs 2 > /dev/null 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  ::setpgid(pid, pid);
  // Stop it once the first run has a checkpoint.
  bool started = false;
  for (int i = 0; i < 600 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& r : manifest->runs) started |= fs::exists(r.dir / "checkpoints");
  }
  REQUIRE(started);
  ::kill(to_group ? -pid : pid, signo);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 128 + signo);
  int interrupted = 0;
  for (const auto& r : manifest->runs) {
    if (!fs::exists(r.dir / "run.h5")) continue;
    const auto run_status = std::get<std::string>(*RunLog::load(r.dir / "run.h5").attr("/", "status"));
    INFO(r.id << ": " << run_status);
    CHECK(run_status != "running");  // every worker that started checkpointed and said so
    interrupted += run_status == "interrupted";
  }
  CHECK(interrupted >= 1);  // the workers checkpointed and stopped

  const auto resumed = run_cli("sweep " + file + " --jobs 2");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  for (const auto& r : manifest->runs) {
    INFO(r.id);
    const auto diff = attnlab::testing::differences(reference.at(r.id), RunLog::load(r.dir / "run.h5"));
    CHECK(diff.empty());
  }
}

TEST_CASE("eval.decode scores MLA's naive and absorbed decodes on every run, and collect lists them beside the full "
          "forward",
          "[sweep][integration]") {
  TempDir tmp;
  std::string text = experiment(tmp.path);
  text.replace(text.find("attention: mha,mqa"), 18, "attention: mla");
  text.replace(text.find("seeds: 2"), 8, "seeds: 1\n  attention.kv_rank: [16, 32]");
  text += "  tokens: 64\n  decode: [naive, absorbed]\n";
  write_bytes(tmp.path / "exp.yaml", text);
  const std::string sweep = "sweep " + (tmp.path / "exp.yaml").string() + " --jobs 2";
  const fs::path sweep_dir = tmp.path / "results" / "exp";
  const auto manifest = run_sweep(sweep, sweep_dir);
  REQUIRE(manifest->runs.size() == 2);
  CHECK(manifest->eval.decode == std::vector<std::string>{"naive", "absorbed"});
  std::map<std::string, ino_t> before;
  for (const auto& r : manifest->runs) {
    INFO(r.id);
    // One row per context length through the full forward, then both decodes.
    CHECK(RunLog::load(r.dir / "run.h5").column("eval/context", "decode").size() == 6);
    before[r.id] = inode(r.dir / "run.h5");
  }
  REQUIRE(run_cli(sweep).exit_code == 0);
  for (const auto& r : manifest->runs) CHECK(inode(r.dir / "run.h5") == before[r.id]);  // all evaluated: not rewritten

  REQUIRE(run_cli("collect " + sweep_dir.string()).exit_code == 0);
  const auto runs = read_csv(sweep_dir / "summary.csv");
  REQUIRE(runs.size() == 3);
  const size_t full = column(runs[0], "ppl_ctx32"), naive = column(runs[0], "ppl_naive_ctx32"),
               absorbed = column(runs[0], "ppl_absorbed_ctx32");
  column(runs[0], "ppl_ctx64");
  for (size_t i = 1; i < runs.size(); ++i) {
    // The cached decodes, one token per forward, score what the full forward scores.
    const double f = std::stod(runs[i][full]);
    CHECK(std::stod(runs[i][naive]) == Approx(f).epsilon(1e-4));
    CHECK(std::stod(runs[i][absorbed]) == Approx(f).epsilon(1e-4));
    CHECK(f > 1.0);
  }
}

TEST_CASE("a recall-task sweep is evaluated once, and collect lists its recall accuracy", "[sweep][integration]") {
  TempDir tmp;
  const std::string text =
      "# @package _global_\n"
      "defaults:\n  - override /model: tiny\n  - override /train: cpu\n  - override /data: synthetic\n"
      "run:\n  root: " + (tmp.path / "results").string() + "\n"
      "data:\n  task: mqar\n  vocab_size: 32\n  num_pairs: 2\n  num_queries: 2\n"
      "model:\n  max_seq_len: 32\n"
      "train:\n  steps: 20\n  seq_len: 16\n  batch_size: 8\n  threads: 1\n  eval_every: 10\n  eval_batches: 2\n"
      "sweep:\n  attention: mha,mqa\n"
      "eval:\n  context: [16, 32]\n";
  write_bytes(tmp.path / "exp.yaml", text);
  const std::string sweep = "sweep " + (tmp.path / "exp.yaml").string() + " --jobs 2";
  const fs::path sweep_dir = tmp.path / "results" / "exp";
  const auto manifest = run_sweep(sweep, sweep_dir);
  std::map<std::string, ino_t> before;
  for (const auto& r : manifest->runs) before[r.id] = inode(r.dir / "run.h5");
  REQUIRE(run_cli(sweep).exit_code == 0);
  for (const auto& r : manifest->runs) CHECK(inode(r.dir / "run.h5") == before[r.id]);  // not evaluated again

  REQUIRE(run_cli("collect " + sweep_dir.string()).exit_code == 0);
  const auto runs = read_csv(sweep_dir / "summary.csv");
  REQUIRE(runs.size() == 3);
  const size_t id = column(runs[0], "run_id"), acc = column(runs[0], "final_val_accuracy"),
               at16 = column(runs[0], "recall_ctx16"), at32 = column(runs[0], "recall_ctx32");
  for (size_t i = 1; i < runs.size(); ++i) {
    const auto& r = *std::find_if(manifest->runs.begin(), manifest->runs.end(),
                                  [&](const auto& m) { return m.id == runs[i][id]; });
    const auto log = RunLog::load(r.dir / "run.h5");
    CHECK(std::stod(runs[i][acc]) == Approx(log.column("eval", "val_accuracy").back()));
    const auto context = log.column("eval/recall", "context");
    const auto accuracy = log.column("eval/recall", "accuracy");
    REQUIRE(context == std::vector<double>{16, 32});
    CHECK(std::stod(runs[i][at16]) == Approx(accuracy[0]));
    CHECK(std::stod(runs[i][at32]) == Approx(accuracy[1]));
  }
}

TEST_CASE("a worker composes only its row, and refuses to start when the experiment changed since the manifest",
          "[sweep][integration]") {
  TempDir tmp;
  const fs::path exp = tmp.path / "exp.yaml";
  write_bytes(exp, experiment(tmp.path));
  const fs::path sweep_dir = tmp.path / "results" / "exp";
  REQUIRE(run_cli("sweep " + exp.string() + " --dry-run").exit_code == 0);  // plans, writes nothing
  CHECK_FALSE(fs::exists(sweep_dir / "sweep.yaml"));
  const auto manifest = run_sweep("sweep " + exp.string() + " --jobs 2", sweep_dir);
  CHECK(manifest->experiment_sha256.size() == 64);

  // A worker's command line, as the launcher writes it: row 1 again is a no-op (complete).
  const std::string worker =
      "sweep " + exp.string() + " --manifest " + (sweep_dir / "sweep.yaml").string() + " --task 1";
  const auto again = run_cli(worker);
  INFO(again.output);
  CHECK(again.exit_code == 0);

  // An edit after the manifest was written (a requeued Slurm task would meet it): refused, nothing run.
  write_bytes(exp, read_bytes(exp) + "# an edit\n");
  fs::remove_all(manifest->runs[1].dir);
  const auto refused = run_cli(worker);
  INFO(refused.output);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains(exp.string()) && Catch::Contains("changed since"));
  CHECK_FALSE(fs::exists(manifest->runs[1].dir));
  // Planning again accepts the edit (its runs are the same) and the worker runs.
  REQUIRE(run_cli("sweep " + exp.string() + " --jobs 2").exit_code == 0);
  CHECK(status_of(manifest->runs[1].dir / "run.h5") == "complete");
}

TEST_CASE("a worker killed by a signal the sweep did not send is reported, and the sweep exits non-zero",
          "[sweep][integration]") {
  TempDir tmp;
  const std::string file = (tmp.path / "exp.yaml").string();
  std::string text = experiment(tmp.path, "", 1);
  text.replace(text.find("steps: 20"), 9, "steps: 400");
  write_bytes(tmp.path / "exp.yaml", text);
  const fs::path log = tmp.path / "sweep.log";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const std::string command = "cd '" ATTNLAB_SOURCE_DIR "' && exec '" ATTNLAB_BINARY "' sweep " + file +
                                " --jobs 1 > '" + log.string() + "' 2>&1";
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // The worker: the sweep's child, once it is training (as the OOM killer would find it).
  pid_t worker = 0;
  for (int i = 0; i < 600 && worker == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string stat = read_bytes(entry.path() / "stat");
      const auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(stat.substr(close + 2));
      char state = 0;
      pid_t parent = 0;
      fields >> state >> parent;
      if (parent == pid && fs::exists(tmp.path / "results" / "exp")) worker = std::stoi(entry.path().filename());
    }
  }
  REQUIRE(worker > 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ::kill(worker, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  const std::string output = read_bytes(log);
  INFO(output);
  CHECK(WEXITSTATUS(status) != 0);
  CHECK_THAT(output, Catch::Contains("killed by signal 9"));
  CHECK_THAT(output, Catch::Contains("which the sweep did not send"));
}
