// `attnlab convert RUN_DIR --to mla --kv-rank R [--rope-dims high|low|uniform]
// [--rope-fraction F] [--finetune STEPS] [--name NAME] [overrides]`: turns a
// trained MHA/GQA run into an MLA run (model/convert.h) beside it. The new
// run is an ordinary run directory: its config is the source's with the MLA
// attention and train.init_from = RUN_DIR, its run.h5 records the source
// checkpoint and its sha256, and it trains for STEPS steps (0: the
// conversion evaluated as it is), so eval, generate and collect read it.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "config/compose.h"
#include "core/error.h"
#include "model/convert.h"
#include "train/init_from.h"

namespace attnlab::cli {
namespace {

namespace fs = std::filesystem;

struct ConvertArgs {
  std::string run_dir;
  std::string to = "mla";
  int64_t kv_rank = 0;
  std::string rope_dims;
  double rope_fraction = 0.0;
  int64_t finetune = 0;
  std::string name;
  bool restart = false;
  std::vector<std::string> overrides;
};

// A folder holding only the source's resolved config.yaml, composed as the
// primary config: the conversion's overrides apply to exactly what the source ran.
class SourceConfigDir {
 public:
  explicit SourceConfigDir(const fs::path& source) {
    dir_ = fs::temp_directory_path() / fmt::format("attnlab-convert-{}", ::getpid());
    fs::create_directories(dir_);
    fs::copy_file(source / "config.yaml", dir_ / "config.yaml", fs::copy_options::overwrite_existing);
  }
  ~SourceConfigDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

int run(const ConvertArgs& args) {
  const fs::path source = fs::path(args.run_dir).lexically_normal();
  const RunConfig source_cfg = train::source_run_config(source);
  const auto request = model::resolve_conversion(source_cfg.model, {args.kv_rank, args.rope_dims, args.rope_fraction});
  auto overrides = model::mla_overrides(source_cfg.model, request);
  const std::string name = !args.name.empty() ? args.name
                                              : fmt::format("{}-mla-r{}-ft{}", source.filename().string(),
                                                            request.kv_rank, args.finetune);
  const fs::path root = source.has_parent_path() ? source.parent_path() : fs::path(".");
  overrides.push_back(fmt::format("train.init_from={}", source.string()));
  overrides.push_back(fmt::format("train.steps={}", args.finetune));
  overrides.push_back(fmt::format("run.root={}", root.string()));
  overrides.push_back(fmt::format("run.name={}", name));
  overrides.insert(overrides.end(), args.overrides.begin(), args.overrides.end());

  SourceConfigDir config_dir(source);
  config::ComposeRequest compose_request;
  compose_request.config_dir = config_dir.path();
  compose_request.overrides = overrides;
  const auto composed = config::compose(compose_request);
  fmt::print("convert {} -> {}: MLA at kv_rank {} ({}), fine-tune {} steps\n", source.string(), (root / name).string(),
             request.kv_rank, request.rope_dims, args.finetune);
  return train_one(composed, root / name, args.restart, 0);
}

}  // namespace

void add_convert(CLI::App& app, Action& action) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand(
      "convert", "Convert a trained MHA/GQA run to MLA by SVD (MHA2MLA): partial RoPE keeps each head's chosen "
                 "frequencies, the other key dims and the values share a rank-R latent; optionally fine-tune");
  cmd->add_option("run_dir", args->run_dir, "The trained run directory (results/NAME[/RUN_ID])")->required();
  cmd->add_option("--to", args->to, "Target attention: mla")->check(CLI::IsMember({"mla"}));
  cmd->add_option("--kv-rank", args->kv_rank, "Latent width R; 0: full rank (exact when no rotary pair is dropped)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--rope-dims", args->rope_dims,
                  "Which rotary pairs each head keeps: high (fastest), low (slowest), uniform; default: the run's own "
                  "partial RoPE, else high")
      ->check(CLI::IsMember({"high", "low", "uniform"}));
  cmd->add_option("--rope-fraction", args->rope_fraction,
                  "Share of each head's rotary pairs kept; default: the run's own partial RoPE, else 0.25")
      ->check(number_in(0.0, 1.0));
  cmd->add_option("--finetune", args->finetune, "Steps of training after the conversion (0: evaluate it as it is)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--name", args->name, "Run directory name beside RUN_DIR; default RUN-mla-rR-ftSTEPS");
  cmd->add_flag("--restart", args->restart, "Discard an existing converted run of that name and convert again");
  cmd->add_option("overrides", args->overrides, "Config overrides for the converted run (optim.lr=..., train.*)");
  cmd->callback([&action, args] { action = [args] { return run(*args); }; });
}

}  // namespace attnlab::cli
