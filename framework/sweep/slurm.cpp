// The Slurm launcher (slurm.h): the batch script, its submission, and squeue.
#include "sweep/slurm.h"

#include <fmt/format.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "results/run_log.h"

namespace attnlab::sweep {
namespace fs = std::filesystem;

namespace {

// Single-quoted for the shell.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command, returns (exit code, stdout).
std::pair<int, std::string> capture(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string shown(const std::string& value) {
  std::string out;
  for (unsigned char c : value) out += c < 0x20 || c == 0x7f ? fmt::format("\\x{:02x}", c) : std::string(1, char(c));
  return out;
}

bool has_control(const std::string& value) {
  return std::any_of(value.begin(), value.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

void refuse(const std::string& what, const std::string& value, const std::string& why) {
  throw UserError(fmt::format("{} '{}' {}: Slurm values go into the batch script as data, never as script lines",
                              what, shown(value), why));
}

void check_charset(const std::string& what, const std::string& value, std::string_view extra, const char* expected) {
  for (unsigned char c : value)
    if (!std::isalnum(c) && extra.find(static_cast<char>(c)) == std::string_view::npos)
      refuse(what, value, fmt::format("holds '{}'; expected {}", shown(std::string(1, char(c))), expected));
}

}  // namespace

void check_slurm_options(const SlurmOptions& o, const std::string& experiment, const fs::path& sweep_dir) {
  check_charset("--partition (launcher.partition)", o.partition, "_.,-",
                "letters, digits and _ . , - (partitions separated by commas)");
  check_charset("--time (launcher.time)", o.time, ":-", "a Slurm time such as 04:00:00, 1-00:00:00 or UNLIMITED");
  for (const auto& line : o.sbatch) {
    if (has_control(line)) refuse("--sbatch (launcher.sbatch)", line, "holds a newline or another control character");
    if (!line.starts_with("-")) refuse("--sbatch (launcher.sbatch)", line, "is not an sbatch option (e.g. --account=lab)");
  }
  if (has_control(experiment))
    refuse("the experiment name", experiment, "holds a newline or another control character (rename the file)");
  const std::string dir = fs::absolute(sweep_dir).string(), cwd = fs::current_path().string();
  if (has_control(dir)) refuse("the sweep folder", dir, "holds a newline or another control character (run.root)");
  if (has_control(cwd)) refuse("the working directory", cwd, "holds a newline or another control character");
}

std::string sbatch_script(const fs::path& sweep_dir, const Manifest& m, const std::vector<std::string>& worker,
                          const SlurmOptions& o) {
  check_slurm_options(o, m.experiment, sweep_dir);
  const fs::path logs = fs::absolute(sweep_dir / "slurm");
  std::ostringstream s;
  s << "#!/bin/bash\n";
  s << "# attnlab sweep " << m.experiment << ": one array task per row of " << manifest_path(sweep_dir).string()
    << "\n# Written by `attnlab sweep --launcher slurm`; submit again with `sbatch` to re-run unfinished rows.\n";
  s << "#SBATCH --job-name=attnlab-" << m.experiment << "\n";
  s << "#SBATCH --array=0-" << (m.runs.empty() ? 0 : m.runs.size() - 1)
    << (o.max_parallel > 0 ? fmt::format("%{}", o.max_parallel) : "") << "\n";
  s << "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=" << o.cpus_per_task << "\n";
  if (o.gpus_per_task > 0) s << "#SBATCH --gpus-per-task=" << o.gpus_per_task << "\n";
  if (!o.partition.empty()) s << "#SBATCH --partition=" << o.partition << "\n";
  if (!o.time.empty()) s << "#SBATCH --time=" << o.time << "\n";
  s << "#SBATCH --output=" << (logs / "task-%a.log").string() << "\n";
  s << "#SBATCH --open-mode=append\n";
  s << "#SBATCH --requeue\n";
  s << "#SBATCH --signal=B:TERM@" << o.signal_seconds << "\n";
  for (const auto& line : o.sbatch) s << "#SBATCH " << line << "\n";
  s << "\ncd " << quote(fs::current_path().string()) << "\n";
  s << "export ATTNLAB_THREADS=${SLURM_CPUS_PER_TASK:-1}\n";
  s << "echo \"attnlab: task ${SLURM_ARRAY_TASK_ID} (job ${SLURM_JOB_ID}, restart ${SLURM_RESTART_COUNT:-0}) on "
       "$(hostname) at $(date -u +%FT%TZ)\"\n";
  // attnlab runs in the background so that the shell's TERM trap runs at once
  // (bash runs traps only between foreground commands); the trap passes the
  // signal on, attnlab checkpoints and exits 143, and the task requeues itself.
  std::string cmd;
  for (const auto& w : worker) cmd += (cmd.empty() ? "" : " ") + quote(w);
  s << cmd << " --task \"$SLURM_ARRAY_TASK_ID\" &\n";
  s << "child=$!\n";
  s << "trap 'kill -TERM $child 2>/dev/null' TERM\n";
  s << "wait $child; code=$?\n";
  s << "while kill -0 $child 2>/dev/null; do wait $child; code=$?; done  # wait again after the trap\n";
  s << "if [ \"$code\" -ge 129 ] && [ \"$code\" -le 143 ]; then\n";
  s << "  trap '' TERM  # a requeue signals the job again\n";
  s << "  echo \"attnlab: interrupted (exit $code) after its checkpoint; requeueing ${SLURM_JOB_ID}\"\n";
  s << "  scontrol requeue \"$SLURM_JOB_ID\"\n";
  s << "fi\n";
  s << "exit $code\n";
  return s.str();
}

int submit(const fs::path& sweep_dir, const Manifest& m, const std::vector<std::string>& worker,
           const SlurmOptions& o) {
  const fs::path dir = sweep_dir / "slurm";
  fs::create_directories(dir);
  const fs::path script = dir / "sweep.sbatch";
  results::atomic_write_text(script, sbatch_script(sweep_dir, m, worker, o));
  fs::permissions(script, fs::perms::owner_exec, fs::perm_options::add);
  const auto [code, out] = capture("sbatch --parsable " + quote(script.string()) + " 2>&1");
  if (code != 0)
    throw Error(fmt::format("sbatch {} failed (exit {}): {}", script.string(), code, out.empty() ? "no output" : out));
  const std::string job = out.substr(0, out.find_first_of(";\n"));
  std::string jobs = read_file(dir / "jobs").value_or("");
  results::atomic_write_text(dir / "jobs", jobs + job + "\n");
  fmt::print("submitted job array {} ({} task(s)) from {}\nlogs: {}/task-<index>.log; `attnlab sweep {} --status` "
             "shows every run\n",
             job, m.runs.size(), script.string(), dir.string(), m.experiment_file.string());
  return 0;
}

std::map<int64_t, std::string> slurm_states(const fs::path& sweep_dir) {
  std::map<int64_t, std::string> out;
  const std::string jobs = read_file(sweep_dir / "slurm" / "jobs").value_or("");
  if (jobs.empty()) return out;
  std::string list;
  std::istringstream in(jobs);
  for (std::string j; std::getline(in, j);)
    if (!j.empty()) list += (list.empty() ? "" : ",") + j;
  // %i: 123_4 for an array task (123_[5-9] for pending ranges, skipped); %T: state.
  const auto [code, out_text] = capture("squeue -h -r -j " + quote(list) + " -o '%i %T' 2>/dev/null");
  if (code != 0) return out;
  std::istringstream lines(out_text);
  for (std::string id, state; lines >> id >> state;) {
    const auto us = id.find('_');
    if (us == std::string::npos) continue;
    try {
      out[std::stoll(id.substr(us + 1))] = state;
    } catch (const std::exception&) {
    }
  }
  return out;
}

}  // namespace attnlab::sweep
