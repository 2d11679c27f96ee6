// `attnlab sweep experiments/NAME.yaml [overrides] [--jobs N] [--launcher local|slurm] ...`
//
// Plans the experiment's sweep into a manifest (results/<name>/sweep.yaml),
// then runs every row that is not complete:
//   local   N worker processes, each `attnlab sweep ... --task I` with its
//           output in <run>/train.log and a share of the CPU threads (or one
//           device of --devices), under one progress line;
//   slurm   one job array whose tasks run `attnlab sweep ... --task I`
//           (sweep/slurm.h).
// A worker trains its row (resuming from a checkpoint, skipping a complete
// run, all under the run's lock) and then runs the evaluations of the
// experiment's `eval:` block. Failures never stop the others; they are
// listed at the end, and only a failed run makes the exit code non-zero.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>

#include <csignal>
#include <cstring>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/multirun.h"
#include "core/error.h"
#include "core/progress.h"
#include "data/sha256.h"
#include "results/run_log.h"
#include "sweep/eval_rows.h"
#include "sweep/launcher.h"
#include "sweep/manifest.h"
#include "sweep/slurm.h"

namespace attnlab::cli {
namespace {
namespace fs = std::filesystem;
using sweep::Manifest;
using sweep::ManifestRun;

struct SweepArgs {
  std::string experiment;  // experiments/NAME.yaml, or NAME
  ConfigArgs config;
  int64_t jobs = sweep::LauncherConfig{}.jobs;
  std::string launcher = "local";
  std::vector<std::string> devices;  // a pool of CUDA devices for local workers
  bool dry_run = false;
  bool fail_fast = false;
  bool extend = false;
  bool status = false;
  int64_t task = -1;  // run exactly this manifest row (a worker)
  std::string manifest;  // with --task: the manifest to read (the launcher passes it; else the sweep is planned to find it)
  sweep::SlurmOptions slurm;
  std::set<std::string> flags_given;  // launcher flags on the command line: they override the launcher config
};


fs::path experiment_file(const SweepArgs& a, const fs::path& config_dir) {
  fs::path p(a.experiment);
  if (fs::is_regular_file(p)) return p;
  const fs::path named = config::experiments_dir(config_dir) / (a.experiment + ".yaml");
  if (fs::is_regular_file(named)) return named;
  throw_user_error("", "experiment", fmt::format("'{}' is neither an experiment file nor a name in {}", a.experiment,
                                                 config::experiments_dir(config_dir).string()));
}

// The launcher: its config (sweep/launcher.h), then the flags given. Takes the
// launcher overrides out of `a.config.overrides`, so that runs never see them.
void resolve_launcher(SweepArgs& a) {
  const auto launcher_overrides = sweep::take_launcher_overrides(a.config.overrides);
  const auto request = make_request(a.config);
  sweep::LauncherConfig c = sweep::resolve_launcher(request.config_dir, experiment_file(a, request.config_dir),
                                                    launcher_overrides,
                                                    a.flags_given.contains("--launcher") ? a.launcher : "");
  const auto given = [&](const char* flag) { return a.flags_given.contains(flag); };
  if (!given("--jobs")) a.jobs = c.jobs;
  a.devices = given("--devices") ? split_list(a.devices) : c.devices;
  if (!given("--partition")) a.slurm.partition = c.slurm.partition;
  if (!given("--time")) a.slurm.time = c.slurm.time;
  if (!given("--gpus-per-task")) a.slurm.gpus_per_task = c.slurm.gpus_per_task;
  if (!given("--cpus-per-task")) a.slurm.cpus_per_task = c.slurm.cpus_per_task;
  if (!given("--max-parallel")) a.slurm.max_parallel = c.slurm.max_parallel;
  if (!given("--signal-seconds")) a.slurm.signal_seconds = c.slurm.signal_seconds;
  // --sbatch lines add to the config's.
  a.slurm.sbatch.insert(a.slurm.sbatch.begin(), c.slurm.sbatch.begin(), c.slurm.sbatch.end());
  a.launcher = c.type;
}

struct Plan {
  Manifest manifest;
  fs::path sweep_dir;
  std::vector<config::Job> jobs;  // by run id through `index`
  std::map<std::string, size_t> job_of;
};

// Expands and validates every run (nothing is written).
Plan plan(const SweepArgs& a) {
  auto request = make_request(a.config);
  const fs::path exp = experiment_file(a, request.config_dir);
  request.experiment = exp;
  auto jobs = config::plan_multirun(request);
  // Runs live under results/<experiment>/ unless the experiment or the command line names the run.
  if (!jobs.empty() && jobs.front().composed.run.run.name == RunConfig().run.name) {
    request.overrides.insert(request.overrides.begin(), "run.name=" + exp.stem().string());
    jobs = config::plan_multirun(request);
  }
  Plan p;
  p.jobs = std::move(jobs);
  const auto& first = p.jobs.front().composed.run.run;
  p.sweep_dir = fs::path(first.root) / first.name;
  p.manifest.experiment = exp.stem().string();
  p.manifest.experiment_file = exp;
  p.manifest.experiment_sha256 = data::sha256_file(exp);
  p.manifest.overrides = a.config.overrides;
  p.manifest.eval = sweep::read_eval_plan(exp);
  for (size_t i = 0; i < p.jobs.size(); ++i) {
    p.manifest.runs.push_back({static_cast<int64_t>(i), p.jobs[i].run_id, p.sweep_dir / p.jobs[i].run_id,
                               p.jobs[i].overrides});
    p.job_of[p.jobs[i].run_id] = i;
  }
  return p;
}

// What a run's file says, read once: its status, whether it holds the
// evaluation rows the plan asks for, and its last validation perplexity.
struct RunState {
  std::string status = "pending";  // no run.h5 yet
  bool evaluated = false;
  std::optional<double> val_ppl;
};

RunState read_state(const fs::path& dir, const sweep::EvalPlan& plan) {
  RunState state;
  const fs::path file = dir / "run.h5";
  if (!fs::exists(file)) return state;
  try {
    const auto log = results::RunLog::load(file);
    if (const auto* s = log.attr("/", "status")) state.status = std::get<std::string>(*s);
    state.evaluated = sweep::read_evaluations(log, dir).covers(plan);
    if (const auto ppl = log.column("eval", "val_ppl"); !ppl.empty()) state.val_ppl = ppl.back();
  } catch (const UserError&) {
    state.status = "unreadable";
  }
  return state;
}

bool done(const RunState& state) { return state.status == "complete" && state.evaluated; }

fs::path self_exe() { return fs::read_symlink("/proc/self/exe"); }

// The worker's command line: the same sweep, one row.
std::vector<std::string> worker_argv(const SweepArgs& a, const Plan& p, int64_t index) {
  std::vector<std::string> argv = {self_exe().string(), "sweep", p.manifest.experiment_file.string()};
  argv.insert(argv.end(), a.config.overrides.begin(), a.config.overrides.end());
  if (!a.config.config_dir.empty()) argv.insert(argv.end(), {"--config-dir", a.config.config_dir});
  argv.insert(argv.end(), {"--manifest", sweep::manifest_path(p.sweep_dir).string()});
  argv.insert(argv.end(), {"--task", std::to_string(index)});
  return argv;
}

// Runs `argv` and waits; its output goes where ours goes. Returns the exit code (128 + signal when killed).
int run_and_wait(const std::vector<std::string>& argv) {
  const pid_t pid = fork();
  if (pid < 0) throw Error("cannot fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    std::vector<char*> args;
    for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A worker: exactly one manifest row, with the same lock and resume rules as `train`.
// A worker: trains and evaluates row `a.task` of the manifest. It composes
// only its own row (the experiment file plus the row's overrides, exactly as
// planning composed it), so N array tasks cost N composes, not N x N, and it
// refuses to run when the experiment file changed since the manifest was
// written (a requeued Slurm task after an edit): re-run `attnlab sweep` then.
int run_task(const SweepArgs& a) {
  fs::path path;
  if (!a.manifest.empty()) {
    path = a.manifest;
  } else {
    path = sweep::manifest_path(plan(a).sweep_dir);
  }
  const auto manifest = sweep::read_manifest(path);
  if (!manifest)
    throw UserError(fmt::format("no sweep manifest at {}: run `attnlab sweep {}` first", path.string(),
                                a.experiment));
  if (a.task < 0 || a.task >= static_cast<int64_t>(manifest->runs.size()))
    throw_user_error("--task", "", fmt::format("{} is not a row of {} (0 to {})", a.task, path.string(),
                                               manifest->runs.size() - 1));
  const ManifestRun& row = manifest->runs[static_cast<size_t>(a.task)];
  if (!manifest->experiment_sha256.empty() &&
      data::sha256_file(manifest->experiment_file) != manifest->experiment_sha256)
    throw_user_error("", manifest->experiment_file.string(),
                     fmt::format("changed since `attnlab sweep` wrote {}: run `attnlab sweep {}` again to plan "
                                 "the sweep with it (run {} was not started)",
                                 path.string(), manifest->experiment_file.string(), row.id));
  auto request = make_request(a.config);
  request.experiment = manifest->experiment_file;
  request.overrides = row.overrides;
  const config::Composed composed = config::compose(request);
  fmt::print("sweep {} task {}: {} ({})\n", manifest->experiment, a.task, row.id, fmt::join(row.overrides, " "));
  std::fflush(stdout);
  const int code = train_one(composed, row.dir, /*restart=*/false, /*stop_after=*/0);
  if (code != 0 || read_state(row.dir, manifest->eval).evaluated) return code;
  std::vector<std::string> eval = {self_exe().string(), "eval", row.dir.string()};
  if (!manifest->eval.context.empty()) {
    std::string list;
    for (int64_t c : manifest->eval.context) list += (list.empty() ? "" : ",") + std::to_string(c);
    eval.insert(eval.end(), {"--context", list});
  }
  if (manifest->eval.recall) eval.push_back("--recall");
  if (manifest->eval.tokens > 0) eval.insert(eval.end(), {"--tokens", std::to_string(manifest->eval.tokens)});
  std::fflush(stdout);
  if (const int eval_code = run_and_wait(eval); eval_code != 0) return eval_code;
  // MLA's cached decode paths, one token at a time, at the same lengths.
  for (const auto& mode : manifest->eval.decode) {
    std::vector<std::string> decode = eval;
    std::erase(decode, std::string("--recall"));
    decode.insert(decode.end(), {"--decode", mode});
    if (const int decode_code = run_and_wait(decode); decode_code != 0) return decode_code;
  }
  return 0;
}

// What a worker's end means for the sweep, given the signal the sweep passed
// on (0: none). A worker stopped by a signal while training checkpoints and
// exits 128 + the signal; between runs of eval it may die of it. Either is
// "interrupted" when it is the sweep's signal, "stopped" when something else
// sent it; one killed otherwise (SIGKILL from the out-of-memory killer, a
// crash) is "killed".
std::string outcome_of(int status, int forwarded) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == forwarded ? "interrupted" : "killed";
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (code == 0) return "complete";
  if (code == 3) return "diverged";
  if (code > 128) return code - 128 == forwarded ? "interrupted" : "stopped";
  return "failed";
}

std::atomic<int> g_sweep_signal{0};
std::atomic<int> g_sweep_signal_count{0};
extern "C" void on_sweep_signal(int signo) {
  g_sweep_signal = signo;
  ++g_sweep_signal_count;
}

int run_local(const SweepArgs& a, const Plan& p, const Manifest& m) {
  const int64_t n_workers = std::max<int64_t>(1, a.jobs);
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = std::max(1, static_cast<int>(cores / static_cast<unsigned>(n_workers)));
  std::vector<const ManifestRun*> to_run;  // rows not complete and evaluated yet, in manifest order
  int64_t skipped = 0;
  for (const auto& r : m.runs) {
    if (done(read_state(r.dir, m.eval))) ++skipped;
    else to_run.push_back(&r);
  }
  fmt::print("sweep {}: {} run(s), {} complete, {} to run with {} worker(s) of {} thread(s)\n", m.experiment,
             m.runs.size(), skipped, to_run.size(), n_workers, threads);
  std::fflush(stdout);

  struct Worker {
    const ManifestRun* run;
    std::string device;
  };
  std::map<pid_t, Worker> running;
  std::vector<std::string> free_devices = a.devices;
  std::map<std::string, std::vector<const ManifestRun*>> ended;  // outcome -> runs
  // Without SA_RESTART, so that a signal interrupts waitpid() and is passed on at once.
  // Each worker runs in a process group of its own, so a terminal's Ctrl-C
  // (SIGINT to the foreground group) reaches the sweep alone, and the sweep
  // passes it on to each worker's group exactly once: a worker that saw two
  // signals would take the second as "stop now" and skip its checkpoint.
  struct sigaction on_signal {}, old_int {}, old_term {}, old_hup {};
  on_signal.sa_handler = on_sweep_signal;
  sigemptyset(&on_signal.sa_mask);
  on_signal.sa_flags = 0;
  sigaction(SIGINT, &on_signal, &old_int);
  sigaction(SIGTERM, &on_signal, &old_term);
  sigaction(SIGHUP, &on_signal, &old_hup);
  g_sweep_signal = 0;
  g_sweep_signal_count = 0;
  Progress progress(fmt::format("sweep {}", m.experiment), static_cast<int64_t>(m.runs.size()));
  size_t next = 0;
  int64_t done = skipped;
  bool stop_launching = false;
  int forwarded = 0, forwarded_count = 0;  // the signal passed on to the workers, and how many were
  auto show = [&] {
    progress.update(done, fmt::format("{} running | {} failed | {} diverged", running.size(), ended["failed"].size(),
                                      ended["diverged"].size()));
  };
  show();
  while (next < to_run.size() || !running.empty()) {
    // Pass each signal on once: the first makes every worker checkpoint and
    // stop; a second one (a user's deliberate second Ctrl-C) stops them at once.
    if (const int count = g_sweep_signal_count; count > forwarded_count) {
      stop_launching = true;
      forwarded = g_sweep_signal;
      forwarded_count = count;
      for (const auto& [pid, w] : running) ::kill(-pid, forwarded);  // the worker and its eval children
    }
    while (!stop_launching && next < to_run.size() && static_cast<int64_t>(running.size()) < n_workers &&
           (a.devices.empty() || !free_devices.empty())) {
      const ManifestRun* r = to_run[next++];
      fs::create_directories(r->dir);
      const auto argv = worker_argv(a, p, r->index);
      std::string device;
      if (!a.devices.empty()) {
        device = free_devices.back();
        free_devices.pop_back();
      }
      const fs::path log = r->dir / "train.log";
      const pid_t pid = fork();
      if (pid < 0) throw Error("cannot fork: " + std::string(std::strerror(errno)));
      if (pid == 0) {
        ::setpgid(0, 0);
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) _exit(126);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
        std::signal(SIGHUP, SIG_DFL);
        ::setenv("ATTNLAB_THREADS", std::to_string(threads).c_str(), 1);
        if (!device.empty()) ::setenv("CUDA_VISIBLE_DEVICES", device.c_str(), 1);
        std::vector<char*> args;
        for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
      }
      ::setpgid(pid, pid);  // also here: a signal may come before the child has run
      running[pid] = {r, device};
      show();
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const auto it = running.find(pid);
    if (it == running.end()) continue;
    const std::string outcome = outcome_of(status, forwarded);
    if (outcome == "killed" || outcome == "stopped")
      fmt::print(stderr, "\nsweep: {} was {} by signal {} ({}), which the sweep did not send\n", it->second.run->id,
                 outcome, WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status) - 128,
                 strsignal(WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status) - 128));
    ended[outcome].push_back(it->second.run);
    if (!it->second.device.empty()) free_devices.push_back(it->second.device);
    running.erase(it);
    ++done;
    if (outcome == "failed" && a.fail_fast) stop_launching = true;
    show();
  }
  const size_t outside = ended["killed"].size() + ended["stopped"].size();
  progress.finish(fmt::format("{} complete | {} failed | {} diverged | {} interrupted{}",
                              ended["complete"].size() + static_cast<size_t>(skipped), ended["failed"].size(),
                              ended["diverged"].size(), ended["interrupted"].size(),
                              outside ? fmt::format(" | {} killed or stopped from outside", outside) : ""));
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  for (const char* kind : {"failed", "diverged", "interrupted", "stopped", "killed"})
    for (const auto* r : ended[kind]) fmt::print("{}: {} (log: {})\n", kind, r->id, (r->dir / "train.log").string());
  if (next < to_run.size()) fmt::print("{} run(s) not started; run the same command again to continue\n", to_run.size() - next);
  if (g_sweep_signal != 0) return 128 + g_sweep_signal;
  return ended["failed"].empty() && outside == 0 ? 0 : 1;
}

int show_status(const Plan& p, const Manifest& m) {
  const auto queued = sweep::slurm_states(p.sweep_dir);
  fmt::print("{:>4}  {:<28} {:<12} {:>8}  {}\n", "task", "run", "status", "val ppl", "log");
  std::map<std::string, int> counts;
  for (const auto& r : m.runs) {
    const RunState state = read_state(r.dir, m.eval);
    std::string status = state.status;
    if (const auto q = queued.find(r.index); q != queued.end() && status != "complete") status += " (" + q->second + ")";
    ++counts[state.status];
    fmt::print("{:>4}  {:<28} {:<12} {:>8}  {}\n", r.index, r.id, status,
               state.val_ppl ? fmt::format("{:.3f}", *state.val_ppl) : "-", (r.dir / "train.log").string());
  }
  std::string summary;
  for (const auto& [s, n] : counts) summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", n, s);
  fmt::print("{} run(s): {}\n", m.runs.size(), summary);
  return 0;
}

int run(SweepArgs a) {
  resolve_launcher(a);
  if (a.task >= 0) return run_task(a);
  Plan p = plan(a);
  if (a.launcher == "slurm") sweep::check_slurm_options(a.slurm, p.manifest.experiment, p.sweep_dir);  // before any write
  const fs::path path = sweep::manifest_path(p.sweep_dir);
  if (a.status) {
    const auto m = sweep::read_manifest(path);
    if (!m) throw UserError(fmt::format("no sweep manifest at {}: nothing launched yet", path.string()));
    return show_status(p, *m);
  }
  const Manifest m = sweep::reconcile(sweep::read_manifest(path), p.manifest, a.extend);
  if (a.dry_run) {
    fmt::print("sweep {}: {} run(s) -> {}\n", m.experiment, m.runs.size(), p.sweep_dir.string());
    size_t width = 0;
    for (const auto& r : m.runs) width = std::max(width, r.id.size());
    const size_t digits = std::to_string(m.runs.size()).size();
    for (const auto& r : m.runs)
      fmt::print("[{:>{}}] {:<{}}  {:<8} {}\n", r.index, digits, r.id, width, read_state(r.dir, m.eval).status,
                 fmt::join(r.overrides, " "));
    return 0;
  }
  sweep::write_manifest(path, m);
  if (a.launcher == "slurm") {
    std::vector<std::string> argv = worker_argv(a, p, 0);
    argv.resize(argv.size() - 2);  // the task id comes from the array
    return sweep::submit(p.sweep_dir, m, argv, a.slurm);
  }
  return run_local(a, p, m);
}

}  // namespace

void add_sweep(CLI::App& app, Action& action) {
  auto a = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("sweep", "Run an experiment's sweep: resumable, in parallel, locally or on Slurm");
  cmd->add_option("experiment", a->experiment, "experiments/NAME.yaml, or NAME")->required();
  add_config_args(*cmd, a->config);
  cmd->add_option("--jobs,-j", a->jobs, "Worker processes (local launcher); each gets a share of the CPU threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--launcher", a->launcher,
                  "local, slurm, or another configs/launcher/NAME.yaml (same as the override launcher=NAME)")
      ->capture_default_str();
  add_list_option(*cmd, "--devices", a->devices, "CUDA devices for local workers, one per worker (e.g. 0,1,2,3)",
                  CLI::Validator([](std::string&) { return std::string(); }, "a device"));
  cmd->add_flag("--dry-run", a->dry_run, "Print the planned runs and their state; run nothing");
  cmd->add_flag("--fail-fast", a->fail_fast, "Start no new run after one fails");
  cmd->add_flag("--extend", a->extend, "Allow new runs in a sweep that already has a manifest");
  cmd->add_flag("--status", a->status, "Show every run's state (from the run files, and squeue for Slurm)");
  cmd->add_option("--task", a->task, "Run one row of the manifest (what each worker and array task does)");
  cmd->add_option("--manifest", a->manifest, "With --task: the sweep's manifest (sweep.yaml), as workers get it");
  auto& o = a->slurm;
  cmd->add_option("--partition", o.partition, "Slurm: partition")->group("Slurm launcher");
  cmd->add_option("--time", o.time, "Slurm: time limit per task (e.g. 04:00:00)")->group("Slurm launcher");
  cmd->add_option("--gpus-per-task", o.gpus_per_task, "Slurm: GPUs per task")->group("Slurm launcher");
  cmd->add_option("--cpus-per-task", o.cpus_per_task, "Slurm: CPUs per task (attnlab's threads)")
      ->capture_default_str()->check(CLI::PositiveNumber)->group("Slurm launcher");
  cmd->add_option("--max-parallel", o.max_parallel, "Slurm: at most this many tasks at once (%P); 0: no limit")
      ->group("Slurm launcher");
  cmd->add_option("--signal-seconds", o.signal_seconds,
                  "Slurm: SIGTERM this long before the time limit, to checkpoint and requeue")
      ->capture_default_str()->group("Slurm launcher");
  cmd->add_option("--sbatch", o.sbatch, "Slurm: an extra #SBATCH option, e.g. --sbatch=--account=lab (repeatable)")
      ->group("Slurm launcher")
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->callback([&action, a, cmd] {
    for (const char* flag : {"--launcher", "--jobs", "--devices", "--partition", "--time", "--gpus-per-task",
                             "--cpus-per-task", "--max-parallel", "--signal-seconds", "--sbatch"})
      if (cmd->get_option(flag)->count() > 0) a->flags_given.insert(flag);
    action = [a] { return run(*a); };
  });
}

}  // namespace attnlab::cli
