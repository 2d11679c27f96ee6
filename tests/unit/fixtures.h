// The golden fixtures' text format (scripts/reference/make_fixtures.py):
// "attnlab-fixture 1", then per tensor "<name> <ndim> <d0> ...", then its
// values row-major.
#pragma once

#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace attnlab::test {

// Reads the text fixture format, version 1 (see make_fixtures.py).
inline std::map<std::string, torch::Tensor> read_fixtures(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in.good());
  std::string magic;
  int version = 0;
  in >> magic >> version;
  REQUIRE(magic == "attnlab-fixture");
  REQUIRE(version == 1);
  std::map<std::string, torch::Tensor> out;
  std::string name;
  while (in >> name) {
    int64_t ndim = 0, numel = 1;
    in >> ndim;
    std::vector<int64_t> shape(static_cast<size_t>(ndim));
    for (auto& d : shape) {
      in >> d;
      numel *= d;
    }
    std::vector<double> values(static_cast<size_t>(numel));
    for (auto& v : values) in >> v;
    REQUIRE(in.good());
    out[name] = torch::tensor(values, torch::kFloat64).view(shape);
  }
  return out;
}

}  // namespace attnlab::test
