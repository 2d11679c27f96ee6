// Test helpers: a relative-error comparison for tensors that reports the
// worst element, and small model configs shared by the model tests.
#pragma once

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <sstream>
#include <string>

#include "config/run_config.h"
#include "model/attention/registry.h"

namespace attnlab::test {

// max |a - b| / max(max |b|, tiny): one relative error for the whole tensor,
// so that near-zero elements do not blow it up.
inline double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  auto af = a.to(torch::kFloat64), bf = b.to(torch::kFloat64);
  const double scale = std::max(bf.abs().max().item<double>(), 1e-300);
  return (af - bf).abs().max().item<double>() / scale;
}

class AllCloseMatcher : public Catch::MatcherBase<torch::Tensor> {
 public:
  AllCloseMatcher(torch::Tensor expected, double rel) : expected_(std::move(expected)), rel_(rel) {}
  bool match(const torch::Tensor& actual) const override {
    if (actual.sizes() != expected_.sizes()) return false;
    return rel_error(actual, expected_) <= rel_;
  }
  std::string describe() const override {
    std::ostringstream os;
    os << "is within relative error " << rel_ << " of the expected tensor " << expected_.sizes();
    return os.str();
  }

 private:
  torch::Tensor expected_;
  double rel_;
};

inline AllCloseMatcher AllClose(torch::Tensor expected, double rel) { return {std::move(expected), rel}; }

// A tiny model shape every variant can take: D=32, H=4, E=8.
// A two-layer model of width 32 with the first configuration the variant's
// registry entry gives its property tests (gqa K=2, mla's small widths, ...).
inline ModelConfig tiny_config(const std::string& attention = "mha") {
  ModelConfig c;
  c.n_layers = 2;
  c.d_model = 32;
  c.n_heads = 4;
  c.vocab_size = 50;
  c.max_seq_len = 64;
  return model::attention_entry(attention).test_configs(c).front().config;
}

// Every registry entry in each configuration its entry asks the property
// tests to cover (MLA: decode paths x rope modes x query ranks), at `base`
// (the tiny shape by default): the one list the property tests GENERATE over.
struct Variant {
  std::string name;
  ModelConfig config;
};
inline std::vector<Variant> registry_variants(const ModelConfig& base = tiny_config("mha")) {
  std::vector<Variant> out;
  for (const auto& entry : model::attention_registry())
    for (const auto& [label, config] : entry.test_configs(base)) out.push_back({label, config});
  return out;
}

}  // namespace attnlab::test

// Catch prints tensors in failure messages through this.
namespace Catch {
template <>
struct StringMaker<torch::Tensor> {
  static std::string convert(const torch::Tensor& t) {
    std::ostringstream os;
    os << "tensor" << t.sizes() << " " << t.scalar_type();
    return os.str();
  }
};
}  // namespace Catch
