// `attnlab data prepare NAME [overrides]`: prepares a corpus (data=NAME) into token files.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/error.h"
#include "data/dataset.h"

namespace attnlab::cli {
namespace {
struct DataArgs {
  std::string name;
  ConfigArgs config;
};
}  // namespace

void add_data(CLI::App& app, Action& action) {
  auto args = std::make_shared<DataArgs>();
  auto* data = app.add_subcommand("data", "Prepare corpora");
  data->require_subcommand(1);
  auto* prepare = data->add_subcommand("prepare", "Tokenize a corpus into data/<name>/ (kjv, or text data.path=FILE)");
  prepare->add_option("name", args->name, "A data config option: kjv, text, synthetic")->required();
  add_config_args(*prepare, args->config);
  prepare->callback([&action, args] {
    action = [args] {
      auto composed = config::compose(make_request(args->config, {"data=" + args->name}));
      data::prepare(composed.run.data);
      auto dataset = data::load(composed.run.data);
      fmt::print("{}: {} train + {} validation tokens ({} tokenizer, vocab {})\n", dataset.dir.string(),
                 dataset.train.size(), dataset.val.size(), dataset.tokenizer->name(), dataset.tokenizer->vocab_size());
      return 0;
    };
  });
}

}  // namespace attnlab::cli
