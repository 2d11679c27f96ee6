// Passkey prompts in text, and scoring recall trials by teacher-forced argmax.
#include "eval/recall.h"

#include <fmt/format.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "core/error.h"
#include "runtime/autocast.h"

namespace attnlab::eval {

std::pair<torch::Tensor, torch::Tensor> text_passkey(const data::Tokenizer& tokenizer, int64_t length, double depth,
                                                     uint64_t seed) {
  // The prompt of Mohtashami & Jaggi (landmark attention), used by YaRN and
  // LongLoRA for passkey retrieval.
  std::mt19937_64 rng(seed);
  const std::string key = fmt::format("{}", std::uniform_int_distribution<int>(10000, 99999)(rng));
  const auto intro = tokenizer.encode(
      "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you "
      "about the important information there. ");
  const auto filler = tokenizer.encode("The grass is green. The sky is blue. The sun is yellow. Here we go. There and "
                                       "back again. ");
  const auto needle = tokenizer.encode("The pass key is " + key + ". Remember it. " + key + " is the pass key. ");
  const auto question = tokenizer.encode("What is the pass key? The pass key is ");
  const auto answer = tokenizer.encode(key);
  // length inputs + 1: the answer's last token is only ever a target.
  const int64_t fixed = static_cast<int64_t>(intro.size() + needle.size() + question.size() + answer.size());
  const int64_t n_filler = length + 1 - fixed;
  if (n_filler < 0)
    throw_user_error("--context", "",
                     fmt::format("{} tokens cannot hold the passkey prompt ({} tokens without filler with this "
                                 "tokenizer); use a longer context",
                                 length, fixed - 1));
  std::vector<int64_t> fill;
  while (static_cast<int64_t>(fill.size()) < n_filler) fill.insert(fill.end(), filler.begin(), filler.end());
  fill.resize(static_cast<size_t>(n_filler));
  const auto at = static_cast<size_t>(std::llround(std::clamp(depth, 0.0, 1.0) * static_cast<double>(n_filler)));
  std::vector<int64_t> tokens(intro);
  tokens.insert(tokens.end(), fill.begin(), fill.begin() + static_cast<long>(at));
  tokens.insert(tokens.end(), needle.begin(), needle.end());
  tokens.insert(tokens.end(), fill.begin() + static_cast<long>(at), fill.end());
  tokens.insert(tokens.end(), question.begin(), question.end());
  tokens.insert(tokens.end(), answer.begin(), answer.end());
  std::vector<int64_t> labels(tokens.size(), data::kIgnoreIndex);
  for (size_t i = tokens.size() - answer.size(); i < tokens.size(); ++i) labels[i] = tokens[i];
  auto all = torch::tensor(tokens, torch::kInt64);
  auto lab = torch::tensor(labels, torch::kInt64);
  return {all.narrow(0, 0, length).clone(), lab.narrow(0, 1, length).clone()};
}

RecallCell score_recall(model::TransformerLM& model, const std::string& task, int64_t context, double depth,
                        int64_t trials, const ContextOptions& options,
                        const std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t)>& make) {
  RecallCell cell{task, context, depth, trials, 0.0, 0.0};
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  int64_t exact = 0, right = 0, targets = 0;
  for (int64_t t0 = 0; t0 < trials; t0 += options.batch) {
    std::vector<torch::Tensor> xs, ys;
    for (int64_t t = t0; t < std::min(trials, t0 + options.batch); ++t) {
      auto [x, y] = make(t);
      xs.push_back(x);
      ys.push_back(y);
    }
    auto inputs_BT = torch::stack(xs).to(options.device);
    auto targets_BT = torch::stack(ys).to(options.device);
    auto correct_BT = torch::zeros_like(targets_BT, torch::kBool);
    AutocastScope autocast(options.device.type(), options.dtype);
    forward_in_chunks(model, inputs_BT, options.chunk, [&](const torch::Tensor& logits_BCV, int64_t from, int64_t n) {
      correct_BT.narrow(1, from, n).copy_(logits_BCV.argmax(-1).eq(targets_BT.narrow(1, from, n)));
    });
    auto scored_BT = targets_BT.ne(data::kIgnoreIndex);
    auto hit_BT = correct_BT & scored_BT;
    right += hit_BT.sum().item<int64_t>();
    targets += scored_BT.sum().item<int64_t>();
    exact += hit_BT.sum(1).eq(scored_BT.sum(1)).sum().item<int64_t>();
  }
  if (was_training) model->train();
  cell.accuracy = static_cast<double>(exact) / static_cast<double>(std::max<int64_t>(1, trials));
  cell.target_accuracy = static_cast<double>(right) / static_cast<double>(std::max<int64_t>(1, targets));
  return cell;
}

}  // namespace attnlab::eval
