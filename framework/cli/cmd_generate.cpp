// `attnlab generate RUN_DIR [attention.cache_dtype=...] --prompt TEXT [--decode naive|absorbed]`:
// decode from a trained run with a KV cache, reporting the bytes the cache allocated.
#include <fmt/format.h>
#include <torch/utils.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/run_dir.h"
#include "core/error.h"
#include "model/generate.h"
#include "model/kv_cache.h"

namespace attnlab::cli {
namespace {
struct GenerateArgs {
  std::string run_dir;
  std::vector<std::string> overrides;  // attention.cache_dtype (and position.*), as eval takes them
  std::string prompt;
  std::string decode;
  std::string device = "auto";
  model::GenerateOptions options;
};

int run(const GenerateArgs& args) {
  auto loaded = load_run(args.run_dir, args.device, /*with_data=*/false, args.overrides);
  if (!args.decode.empty()) {
    loaded.model->set_decode(model::parse_decode(args.decode));
  }
  auto ids = loaded.tokenizer->encode(args.prompt);
  if (ids.empty()) throw UserError("--prompt: the prompt encodes to no tokens; give some text");
  const int64_t max_len = loaded.config.model.max_seq_len;
  if (static_cast<int64_t>(ids.size()) + args.options.max_new_tokens > max_len) {
    throw UserError(fmt::format("--max-new-tokens: prompt ({} tokens) plus {} new tokens exceed model.max_seq_len {}",
                                ids.size(), args.options.max_new_tokens, max_len));
  }
  auto device = loaded.model->parameters().front().device();
  auto prompt_BT = torch::tensor(ids, torch::kInt64).unsqueeze(0).to(device);

  torch::NoGradGuard no_grad;
  auto t0 = std::chrono::steady_clock::now();
  auto result = model::generate(loaded.model, prompt_BT, args.options);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  auto row = result.tokens_BT[0].to(torch::kCPU).contiguous();
  std::vector<int64_t> out(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  fmt::print("{}\n", loaded.tokenizer->decode(out));
  std::fflush(stdout);  // the text first, then the stats line on stderr
  fmt::print(stderr, "[{} tokens in {:.2f} s | weights {} | {} KV cache allocated {} bytes]\n", result.n_generated,
             secs, loaded.checkpoint.filename().string(), loaded.config.model.attention.cache_dtype, result.cache_bytes);
  return 0;
}
}  // namespace

void add_generate(CLI::App& app, Action& action) {
  auto args = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a trained run (prefill, then cached decode)");
  cmd->add_option("run_dir", args->run_dir, "A run directory (results/<name>[/<run id>])")->required();
  cmd->add_option("overrides", args->overrides,
                  "attention.cache_dtype (e.g. attention.cache_dtype=int8) and position.* overrides for this "
                  "generation only");
  cmd->add_option("--prompt", args->prompt, "Text to continue")->required();
  cmd->add_option("--decode", args->decode, "MLA decode path (default: the run's attention.decode)")
      ->check(CLI::IsMember({"naive", "absorbed"}));
  cmd->add_option("--max-new-tokens", args->options.max_new_tokens, "Tokens to generate")
      ->check(integer_in(1, 1 << 24));
  cmd->add_option("--temperature", args->options.temperature, "0 = greedy")->check(number_in(0, 1e6));
  cmd->add_option("--top-k", args->options.top_k, "Sample among the k most likely (0 = all)")
      ->check(integer_in(0, int64_t{1} << 31));
  cmd->add_option("--top-p", args->options.top_p, "Nucleus sampling mass (1 = all)")
      ->check(number_in(0.0, 1.0, /*lo_open=*/true));
  cmd->add_option("--seed", args->options.seed, "Sampling seed")
      ->check(integer_in(0, std::numeric_limits<int64_t>::max()));
  cmd->add_option("--device", args->device, "auto | cpu | cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->callback([&action, args] { action = [args] { return run(*args); }; });
}

}  // namespace attnlab::cli
