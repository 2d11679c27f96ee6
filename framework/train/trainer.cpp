// The training loop and the run directory's lifecycle.
#include "train/trainer.h"

#include <fmt/format.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <variant>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <numeric>
#include <optional>

#include "config/node.h"
#include "config/schema.h"
#include "config/yaml_load.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "data/dataset.h"
#include "data/sha256.h"
#include "data/synthetic.h"
#include "data/tokenizer.h"
#include "eval/evaluate.h"
#include "model/transformer.h"
#include "results/run_log.h"
#include "runtime/autocast.h"
#include "runtime/device.h"
#include "train/checkpoint.h"
#include "train/init_from.h"
#include "train/mfu.h"
#include "train/model_info.h"
#include "train/optimizer.h"
#include "train/run_directory.h"
#include "train/schedule.h"
#include "train/step.h"

namespace attnlab::train {
namespace fs = std::filesystem;
using results::RunLog;

namespace {

// Ctrl-C (SIGINT), a scheduler's preemption (SIGTERM, or SIGUSR1 as Slurm's
// `--signal=USR1@T` sends before the time limit) and a closed terminal
// (SIGHUP) ask the loop to stop after
// the current step, checkpoint, and commit; a second signal falls back to the
// default (immediate) behaviour.
std::atomic<int> g_stop_signal{0};
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
extern "C" void on_interrupt(int signo) {
  g_stop_signal = signo;
  std::signal(signo, SIG_DFL);
}
class InterruptScope {
 public:
  InterruptScope() {
    g_stop_signal = 0;
    for (size_t i = 0; i < std::size(kStopSignals); ++i) previous_[i] = std::signal(kStopSignals[i], on_interrupt);
  }
  ~InterruptScope() {
    for (size_t i = 0; i < std::size(kStopSignals); ++i) std::signal(kStopSignals[i], previous_[i]);
  }

 private:
  void (*previous_[std::size(kStopSignals)])(int);
};

std::string signal_name(int signo) {
  return signo == SIGTERM ? "SIGTERM" : signo == SIGHUP ? "SIGHUP" : signo == SIGUSR1 ? "SIGUSR1" : "Ctrl-C (SIGINT)";
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string host_name() {
  char buf[256] = {};
  return gethostname(buf, sizeof buf - 1) == 0 ? std::string(buf) : std::string("unknown");
}

// The run keeps its own copy of the tokenizer, so `eval` and `generate` use
// exactly the one it was trained with, and records what it trained on.
void save_data_provenance(RunLog& log, const fs::path& run_dir, const RunConfig& cfg, const data::Dataset& ds) {
  if (cfg.data.kind == "synthetic") {  // generated from the config and the seed: nothing to hash or copy
    log.set_attr("/data", "corpus", ds.name);
    log.set_attr("/data", "tokenizer", ds.tokenizer->name());
    log.set_attr("/data", "tokenizer_vocab_size", ds.tokenizer->vocab_size());
    return;
  }
  data::copy_tokenizer(cfg.data.tokenizer, ds.tokens_dir, run_dir / "tokenizer");
  log.set_attr("/data", "corpus", ds.name);
  log.set_attr("/data", "corpus_sha256", ds.corpus_sha256);
  log.set_attr("/data", "tokenizer", ds.tokenizer->name());
  log.set_attr("/data", "tokenizer_vocab_size", ds.tokenizer->vocab_size());
  log.set_attr("/data", "tokenizer_sha256", data::tokenizer_hash(cfg.data.tokenizer, run_dir / "tokenizer"));
}

// A resumed run must see the same tokenizer it started with.
void check_same_tokenizer(const RunLog& log, const fs::path& run_dir, const data::Dataset& ds) {
  const auto* recorded = log.attr("/data", "tokenizer_sha256");
  if (recorded == nullptr) return;  // written before runs recorded it
  if (std::get<std::string>(*recorded) != ds.tokenizer_sha256) {
    throw_user_error("data.tokenizer", "", fmt::format("{} was trained with a tokenizer (sha256 {}) other than the one "
                                                       "prepared in {} (sha256 {}); pass --restart to start over",
                                                       run_dir.string(), std::get<std::string>(*recorded),
                                                       ds.tokens_dir.string(), ds.tokenizer_sha256));
  }
}

void write_run_files(const fs::path& run_dir, const config::Composed& composed) {
  std::string defaults;
  for (const auto& d : composed.defaults) defaults += "- " + d + "\n";
  results::atomic_write_text(run_dir / "config.yaml", composed.resolved_yaml, "config");
  results::atomic_write_text(run_dir / "overrides.yaml", composed.overrides_yaml, "config");
  results::atomic_write_text(run_dir / "defaults.yaml", defaults, "config");
}

void write_root_attrs(RunLog& log, const config::Composed& composed, const torch::Device& device) {
  log.set_attr("/", "attnlab_version", std::string(ATTNLAB_VERSION));
  log.set_attr("/", "git_sha", std::string(ATTNLAB_GIT_SHA));
  log.set_attr("/", "torch_version", std::string(TORCH_VERSION));
  log.set_attr("/", "cuda_version", device.is_cuda() ? std::string("available") : std::string("none"));
  log.set_attr("/", "device_name", device_description(device));
  log.set_attr("/", "hostname", host_name());
  log.set_attr("/", "seed", composed.run.seed);
  log.set_attr("/", "data_seed", composed.run.resolved_data_seed());
  log.set_attr("/", "started", utc_now());
  log.set_attr("/", "config_yaml", composed.resolved_yaml);
  log.set_attr("/", "overrides", composed.overrides_yaml);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

model::TransformerLM init_model(const RunConfig& cfg, int64_t vocab_size) {
  seed_everything(cfg.seed);
  ModelConfig model_cfg = cfg.model;
  model_cfg.vocab_size = vocab_size;
  return model::TransformerLM(model_cfg);
}

data::Batcher training_batcher(const RunConfig& cfg, const data::TokenStore& train) {
  return data::Batcher(train, cfg.train.batch_size, cfg.train.seq_len, static_cast<uint64_t>(cfg.resolved_data_seed()));
}

namespace {

// A failure the trainer has already explained (an allocation failure with the
// keys that size memory): passed through as it is.
class ExplainedError : public Error {
 public:
  using Error::Error;
};

// What to tell the user about an exception that ends a run. An allocation
// failure, on the CPU or a GPU, names the keys that size memory; anything
// else keeps its own message (an I/O error names its file).
std::string describe_failure(const std::exception& e, const RunConfig& cfg) {
  const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  const std::string what = c10_error ? c10_error->what_without_backtrace() : e.what();
  const bool out_of_memory = dynamic_cast<const std::bad_alloc*>(&e) != nullptr ||
                             dynamic_cast<const c10::OutOfMemoryError*>(&e) != nullptr ||
                             what.find("can't allocate memory") != std::string::npos;
  if (!out_of_memory) return what;
  const auto first_line = what.substr(0, what.find('\n'));
  return fmt::format("out of memory (train.device={}: {}). Memory grows with train.batch_size={}, "
                     "train.seq_len={}, model.d_model={}, model.n_layers={} and the vocabulary; lower one of them "
                     "(raise train.grad_accum to keep the tokens per step), or pick a smaller model=",
                     cfg.train.device, first_line, cfg.train.batch_size, cfg.train.seq_len, cfg.model.d_model,
                     cfg.model.n_layers);
}

TrainOutcome train_run(const TrainRequest& request) {
  const RunConfig& cfg = request.composed.run;
  const TrainConfig& tc = cfg.train;

  // Everything a user can get wrong is checked before the run directory is touched.
  const torch::Device device = select_device(tc.device);
  const torch::ScalarType dtype = parse_dtype(tc.dtype, "train.dtype");
  // train.threads wins; else a sweep worker's share of the CPU (ATTNLAB_THREADS,
  // set by `attnlab sweep --jobs N`); else LibTorch's default.
  if (tc.threads > 0) {
    torch::set_num_threads(static_cast<int>(tc.threads));
  } else if (const char* share = std::getenv("ATTNLAB_THREADS"); share != nullptr) {
    torch::set_num_threads(static_cast<int>(threads_from_environment(share)));
  }
  data::Dataset dataset = data::load(cfg.data);
  const bool synthetic = cfg.data.kind == "synthetic";
  for (const auto* split : {&dataset.train, &dataset.val}) {
    if (synthetic) break;  // generated sequences of exactly train.seq_len
    if (split->size() < tc.seq_len + 1) {
      throw_user_error("train.seq_len", "", fmt::format("{} tokens per window, but a split of '{}' holds only {}",
                                                        tc.seq_len + 1, dataset.name, split->size()));
    }
  }
  check_init_from(cfg);  // before anything is written
  model::TransformerLM model = init_model(cfg, dataset.tokenizer->vocab_size());
  model->to(device);
  auto optimizer = make_adamw(*model, cfg.optim);

  const fs::path run_file = request.run_dir / "run.h5";
  TrainOutcome outcome;
  outcome.run_file = run_file;
  // One writer per run directory, for the rest of this call (multirun jobs too).
  RunDirectory run_dir(request.run_dir, request.restart);
  run_dir.check_belongs(cfg);
  // From the moment the run directory is ours, a stop signal is noted and
  // acted on at the first step boundary (checkpoint, "interrupted"): one
  // arriving while the data and the record are set up must not kill the
  // process with run.h5 at "running".
  InterruptScope interrupts;
  if (run_dir.has_record()) {
    RunLog existing = RunLog::load(run_file);
    const auto* status = existing.attr("/", "status");
    if (status && std::get<std::string>(*status) == "complete") {
      run_dir.prune(existing);  // a kill between the final commit and its prune left an old checkpoint
      outcome.status = "skipped";
      const auto ppl = existing.column("eval", "val_ppl");
      const auto loss = existing.column("eval", "val_loss");
      outcome.final_val_ppl = ppl.empty() ? 0.0 : ppl.back();
      outcome.final_val_loss = loss.empty() ? 0.0 : loss.back();
      outcome.steps = tc.steps;
      return outcome;
    }
  }
  write_run_files(request.run_dir, request.composed);

  // Resume from the newest verified checkpoint the record lists, or start fresh.
  const std::string identity = config_identity(cfg);
  CheckpointState state;
  bool resumed = false;
  RunLog log(run_file);
  if (run_dir.has_record()) {
    log = RunLog::load(run_file);
    check_same_tokenizer(log, request.run_dir, dataset);
    if (const auto checkpoint = run_dir.reconcile(log)) {
      state = load_checkpoint(*checkpoint, *model, *optimizer);
      resumed = true;
      if (!state.config_sha256.empty() && state.config_sha256 != identity)
        throw_user_error("run.name", "",
                         fmt::format("checkpoint {} was written by another config than this run's; pass --restart to "
                                     "start over",
                                     checkpoint->string()));
      log.add_event({state.step, "resume", fmt::format("resumed from {}", checkpoint->filename().string())});
    } else {
      log.add_event({0, "resume", "no checkpoint to resume from: training again from step 0"});
    }
    log.truncate_after(state.step);  // rows past the checkpoint come again, bit for bit
  } else {
    write_root_attrs(log, request.composed, device);
    write_model_attrs(log, *model, cfg);
    save_data_provenance(log, request.run_dir, cfg, dataset);
    log.add_event({0, "start", fmt::format("training on {}", device_description(device))});
  }
  // train.init_from: a run that starts (not one that resumes) from another
  // run's weights, converted to this run's attention.
  if (!cfg.train.init_from.empty() && !resumed) {
    const auto init = initialise_from_run(model, cfg.train.init_from);
    const double energy = std::accumulate(init.report.energy_kept.begin(), init.report.energy_kept.end(), 0.0) /
                          static_cast<double>(std::max<size_t>(1, init.report.energy_kept.size()));
    log.set_attr("/model", "converted_from", cfg.train.init_from);
    log.set_attr("/model", "converted_from_checkpoint", init.checkpoint.filename().string());
    log.set_attr("/model", "converted_from_sha256", init.checkpoint_sha256);
    log.set_attr("/model", "converted_kv_rank", init.report.kv_rank);
    log.set_attr("/model", "converted_full_rank", init.report.full_rank);
    log.set_attr("/model", "converted_energy_kept", energy);
    log.add_event({0, "convert", fmt::format("started from {} ({}), converted to MLA at kv_rank {} of {} (joint SVD "
                                             "keeps {:.4f} of the squared singular values, mean over layers)",
                                             cfg.train.init_from, init.checkpoint.filename().string(),
                                             init.report.kv_rank, init.report.full_rank, energy)});
  }
  state.config_sha256 = identity;  // every checkpoint says which config wrote it
  // The kernel this device runs (a resumed run may have moved to another device).
  const std::string kernel = attention_kernel(cfg, device, dtype);
  log.set_attr("/model", "attention_kernel", kernel);

  // From here on every way out leaves a terminal status in run.h5 (the
  // catch below), except a SIGKILL, after which the re-run resumes.
  try {
    set_status(log, "running", state.step);
    log.commit();
    // Training windows from the corpus, or generated sequences of a synthetic task.
    const auto spec = data::SyntheticSpec::from(cfg.data, tc.seq_len);
    const auto data_seed = static_cast<uint64_t>(cfg.resolved_data_seed());
    using AnyBatcher = std::variant<data::Batcher, data::SyntheticBatcher>;
    AnyBatcher batcher = synthetic ? AnyBatcher{data::SyntheticBatcher(spec, tc.batch_size, data_seed)}
                                   : AnyBatcher{training_batcher(cfg, dataset.train)};
    std::visit([&](auto& b) { b.set_state(state.batcher_draws); }, batcher);
    const eval::Batches val_batches =
        synthetic ? data::synthetic_validation(spec, tc.eval_batches, tc.batch_size, data_seed)
                  : data::validation_batches(dataset.val, tc.eval_batches, tc.batch_size, tc.seq_len);

    auto run_eval = [&](int64_t step) {
      auto r = eval::evaluate(model, val_batches, device, dtype, *dataset.tokenizer);
      std::map<std::string, double> row{{"step", static_cast<double>(step)},
                                        {"tokens", static_cast<double>(state.tokens_seen)},
                                        {"val_loss", r.loss},
                                        {"val_ppl", r.ppl},
                                        {"val_bits_per_byte", r.bits_per_byte}};
      // Recall tasks score the answers only, and accuracy is what they report.
      if (synthetic) row["val_accuracy"] = r.accuracy;
      log.append("eval", row);
      outcome.final_val_loss = r.loss;
      outcome.final_val_ppl = r.ppl;
      return r;
    };
    auto checkpoint_and_commit = [&](const std::string& status) {
      state.batcher_draws = std::visit([](auto& b) { return b.state(); }, batcher);
      run_dir.checkpoint_and_commit(log, *model, *optimizer, state, tc.keep_checkpoints, status);
    };

    Progress progress(fmt::format("train {}", request.run_dir.filename().string()), tc.steps);
    std::vector<double> window_ms;  // mean ms per step of each logged window
    int64_t steps_this_process = 0;
    const int64_t tokens_per_step = tc.batch_size * tc.seq_len * tc.grad_accum;
    // MFU needs the device's peak; without one (a CPU, a GPU not in the table,
    // no train.peak_tflops) it is not reported at all rather than guessed.
    const double flops_per_token = model_flops_per_token(*model, tc.seq_len);
    const std::optional<double> peak = peak_tflops(device_description(device), dtype, tc.peak_tflops);
    auto mfu_of = [&](double tokens_per_s) { return tokens_per_s * flops_per_token / (*peak * 1e12); };
    auto window_start = std::chrono::steady_clock::now();
    int64_t window_steps = 0;
    std::string last_train = "-", last_val = "-";
    outcome.status = "complete";
    model->train();
    // Micro-batches go to a GPU from page-locked memory, one asynchronous copy each.
    const bool pinned = device.is_cuda();
    const NextBatch next_batch = [&] {
      return data::stacked_batch(std::visit([](auto& b) { return b.next(); }, batcher), pinned);
    };
    DivergenceWatch divergence(device);

    while (state.step < tc.steps) {
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = learning_rate(cfg.optim, state.step, tc.steps);
      set_learning_rate(*optimizer, lr);
      const StepResult step = train_step(model, *optimizer, next_batch, cfg, device, dtype);
      state.step += 1;
      state.tokens_seen += tokens_per_step;
      divergence.observe(step.loss, state.step);
      ++window_steps;
      ++steps_this_process;
      state.train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

      // The host reads device values only at these steps (train.log_every,
      // evaluations, checkpoints, a stop); between them steps queue up.
      const bool last = state.step == tc.steps;
      const bool log_now = state.step % tc.log_every == 0 || last;
      const bool eval_now = (tc.eval_every > 0 && state.step % tc.eval_every == 0) || last;
      const bool checkpoint_now = tc.checkpoint_every > 0 && state.step % tc.checkpoint_every == 0 && !last;
      const bool stop_requested = request.stop_after > 0 && steps_this_process >= request.stop_after && !last;
      // A signal at the last step (during the final evaluation) lets the run
      // complete: stopping there would leave nothing for a resume to do.
      const int signo = last ? 0 : g_stop_signal.load();
      if (!(log_now || eval_now || checkpoint_now || stop_requested || signo != 0)) {
        if (request.show_progress) progress.update(state.step, last_train);
        continue;
      }

      if (const auto diverged = divergence.first()) {
        outcome.status = "diverged";
        state.step = diverged->step;  // what the run reached; the steps after it are not kept
        log.add_event({state.step, "diverged", fmt::format("loss became {} at step {}", diverged->loss, state.step)});
        set_status(log, "diverged", state.step);
        log.commit();
        break;
      }
      if (log_now) {
        const double loss = step.loss.item<double>();
        const double grad_norm = step.grad_norm.item<double>();  // the device has finished the window here
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_start).count();
        const double tok_s = secs > 0 ? static_cast<double>(window_steps * tokens_per_step) / secs : 0.0;
        log.append("train", {{"step", static_cast<double>(state.step)},
                             {"tokens", static_cast<double>(state.tokens_seen)},
                             {"loss", loss},
                             {"lr", lr},
                             {"grad_norm", grad_norm},
                             {"tokens_per_s", tok_s}});
        const double ms = 1000.0 * secs / static_cast<double>(window_steps);
        window_ms.push_back(ms);
        last_train = fmt::format("loss {:.3f} | val {} | {:.0f} ms/step | {:.0f} tok/s{} | {}", loss, last_val, ms,
                                 tok_s, peak ? fmt::format(" | MFU {:.1f}%", 100.0 * mfu_of(tok_s)) : "", kernel);
        window_start = std::chrono::steady_clock::now();
        window_steps = 0;
      }
      if (eval_now) {
        const auto eval_start = std::chrono::steady_clock::now();
        last_val = fmt::format("{:.3f}", run_eval(state.step).loss);
        window_start += std::chrono::steady_clock::now() - eval_start;  // evaluating is not training throughput
      }
      if (request.show_progress) progress.update(state.step, last_train);

      if (signo != 0 || stop_requested) {
        outcome.status = "interrupted";
        outcome.signal = signo;
        log.add_event({state.step, "interrupted",
                       signo != 0 ? fmt::format("stopped by {}; re-run the same command to resume", signal_name(signo))
                                  : "stopped by --stop-after; re-run the same command to resume"});
        checkpoint_and_commit("interrupted");
        break;
      }
      if (checkpoint_now) {
        log.add_event({state.step, "checkpoint", ""});
        checkpoint_and_commit("running");
      }
    }

    outcome.steps = state.step;
    outcome.ms_per_step = median(window_ms);
    if (outcome.status == "complete" && steps_this_process == 0) {
      // Resumed from a checkpoint at the last step (the process that wrote it
      // died before committing run.h5 as complete): nothing to train, but the
      // summary must come from the run's own record, never from zeros.
      const auto steps = log.column("eval", "step");
      if (!steps.empty() && steps.back() == static_cast<double>(state.step)) {
        outcome.final_val_loss = log.column("eval", "val_loss").back();
        outcome.final_val_ppl = log.column("eval", "val_ppl").back();
      } else {
        run_eval(state.step);
      }
      // No step timed here: the median step time from the logged throughput.
      std::vector<double> ms;
      for (double tok_s : log.column("train", "tokens_per_s"))
        if (tok_s > 0) ms.push_back(1000.0 * static_cast<double>(tokens_per_step) / tok_s);
      outcome.ms_per_step = median(ms);
    }
    if (request.show_progress) progress.finish(fmt::format("{} | val loss {:.3f} | ppl {:.2f}", outcome.status, outcome.final_val_loss,
                                outcome.final_val_ppl));
    if (outcome.status == "complete") {
      const auto ppl = log.column("eval", "val_ppl");
      log.set_attr("/summary", "final_val_ppl", outcome.final_val_ppl);
      log.set_attr("/summary", "final_val_loss", outcome.final_val_loss);
      log.set_attr("/summary", "best_val_ppl", ppl.empty() ? 0.0 : *std::min_element(ppl.begin(), ppl.end()));
      log.set_attr("/summary", "train_seconds", state.train_seconds);
      log.set_attr("/summary", "tokens_seen", state.tokens_seen);
      log.set_attr("/summary", "ms_per_step_median", outcome.ms_per_step);
      const double tokens_per_s = outcome.ms_per_step > 0 ? static_cast<double>(tokens_per_step) / (outcome.ms_per_step / 1000.0) : 0.0;
      log.set_attr("/summary", "tokens_per_s", tokens_per_s);
      log.set_attr("/summary", "flops_per_token", flops_per_token);
      if (peak) {
        log.set_attr("/summary", "peak_tflops", *peak);
        log.set_attr("/summary", "mfu", mfu_of(tokens_per_s));
      }
      log.set_attr("/", "finished", utc_now());
      log.add_event({state.step, "complete", ""});
      checkpoint_and_commit("complete");
    }
    return outcome;
  } catch (const std::exception& e) {
    const std::string why = describe_failure(e, cfg);
    log.add_event({state.step, "failed", why});
    set_status(log, "failed", state.step);
    try {
      log.commit();
    } catch (const std::exception& also) {  // the disk that failed the run may refuse this too
      fmt::print(stderr, "attnlab: could not record the failure in {} either: {}\n", run_file.string(), also.what());
    }
    if (why != e.what()) throw ExplainedError(why);
    throw;
  }
}

}  // namespace

TrainOutcome train(const TrainRequest& request) {
  try {
    return train_run(request);
  } catch (const ExplainedError&) {
    throw;
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {  // e.g. out of memory building the model, before the run began
    const std::string why = describe_failure(e, request.composed.run);
    if (why != e.what()) throw ExplainedError(why);
    throw;
  }
}

}  // namespace attnlab::train
