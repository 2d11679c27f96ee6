// Unsafe or malformed YAML in a temporary config folder: each is rejected
// with file:line:col, nothing is written, and the binary exits 2.
#include <catch2/catch.hpp>

#include "config/yaml_load.h"
#include "config_test_util.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

struct BadYaml {
  std::string file;     // relative to the temp folder
  std::string text;
  std::string origin;   // expected end of the diagnostic's origin
  std::string message;  // a part of its message
};

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

const std::string kLaughs =
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
    "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n";

}  // namespace

TEST_CASE("unsafe and malformed YAML is rejected with file:line:col", "[config][yaml]") {
  // clang-format off
  const std::vector<BadYaml> cases = {
    {"configs/model/tiny.yaml", "n_layers: 2\nd_model: 128\nn_layers: 3\n", "model/tiny.yaml:3:1", "duplicate key (first defined at "},
    {"configs/model/tiny.yaml", "n_layers: !!python/object:os.system 2\n", "model/tiny.yaml:1:11", "YAML tags are not allowed here ('tag:yaml.org,2002:python/object:os.system')"},
    {"configs/model/tiny.yaml", "n_layers: !custom 2\n", "model/tiny.yaml:1:11", "YAML tags are not allowed here ('!custom')"},
    {"configs/model/tiny.yaml", "n_layers: !!map {}\n", "model/tiny.yaml:1:11", "YAML tags are not allowed"},
    {"configs/model/tiny.yaml", kLaughs, "model/tiny.yaml:3:12", "aliases expand to more than 256 nodes"},
    {"configs/model/tiny.yaml", "n_layers: &a [1, *a]\n", "model/tiny.yaml:1:18", "recursive alias"},
    {"configs/model/tiny.yaml", "n_layers: 2\n---\nd_model: 3\n", "model/tiny.yaml:2:1", "several YAML documents in one file"},
    {"configs/model/tiny.yaml", "? [a, b]\n: 1\n", "model/tiny.yaml:1:3", "keys must be plain scalars"},
    {"configs/model/tiny.yaml", "{a: 1}: 2\n", "model/tiny.yaml:1:1", "keys must be plain scalars"},
    {"configs/model/tiny.yaml", "~: 2\n", "model/tiny.yaml:1:1", "keys must be plain scalars, not maps, lists or null"},
    {"configs/model/tiny.yaml", "n_layers: " + nested(70) + "\n", "model/tiny.yaml:1:", "nesting deeper than 64 levels"},
    {"configs/model/tiny.yaml", "n_layers: [1, 2\n", "model/tiny.yaml:2:1", "invalid YAML: "},
    {"configs/model/tiny.yaml", "- 1\n- 2\n", "model/tiny.yaml:1:1", "the top level of a config file must be a mapping"},
    {"configs/model/tiny.yaml", "n_layers: 2\nd_model: 4\nn_layers: 3\nd_model: 5\n", "model/tiny.yaml:4:1", "duplicate key"},
    {"configs/config.yaml", "defaults:\n  - model: tiny\n  - _self_\nmodel.n_layers: 3\n", "config.yaml:4:1", "nest maps instead of dotted keys"},
    {"configs/config.yaml", "defaults:\n  - model: tiny\n  - _self_\nmodel:\n  n_layer: 3\n", "config.yaml:5:12", "unknown key (did you mean 'model.n_layers'?)"},
    {"configs/config.yaml", "defaults:\n  - model: tiny\nmodel:\n  d_model: wide\n", "config.yaml:4:12", "expected an integer in [1, 65536], got 'wide'"},
    {"configs/config.yaml", "defaults:\n  - model tiny\n", "config.yaml:2:5", "expected 'group: option' or _self_"},
    {"configs/config.yaml", "defaults:\n  - model: huge\n", "config.yaml:2:5", "no option 'huge' in group 'model'"},
    {"configs/config.yaml", "defaults:\n  - modle: tiny\n", "config.yaml:2:5", "no config group 'modle' (did you mean 'model'?)"},
    {"configs/config.yaml", "defaults: {model: tiny}\n", "config.yaml:1:11", "expected a list"},
    {"configs/model/tiny.yaml", "defaults:\n  - attention: mha\nn_layers: 2\n", "model/tiny.yaml:2:3", "defaults lists are read from config.yaml and experiment files only"},
    {"experiments/bad.yaml", "seed: 3\n", "experiments/bad.yaml:1", "start it with '# @package _global_'"},
    {"experiments/bad.yaml", "# @package _global_\nseed: 3\nseed: 4\n", "experiments/bad.yaml:3:1", "duplicate key"},
    {"experiments/bad.yaml", "# @package _global_\ndefaults:\n  - override /attention: mlx\n", "experiments/bad.yaml:3:5", "no option 'mlx' in group 'attention'"},
  };
  // clang-format on
  for (const auto& c : cases) {
    INFO(c.file << ":\n" << c.text);
    TempDir dir;
    write_minimal_configs(dir);
    dir.write(c.file, c.text);
    auto before = snapshot(dir.path());
    config::ComposeRequest request;
    request.config_dir = dir.path() / "configs";
    if (c.file.rfind("experiments/", 0) == 0) request.overrides = {"+experiment=bad"};
    auto errors = compose_errors(request);
    std::string text;
    for (const auto& d : errors) text += d.to_string() + "\n";
    INFO("got:\n" << text);
    REQUIRE_FALSE(errors.empty());
    bool found = false;
    for (const auto& d : errors)
      found = found || (d.origin.size() >= c.origin.size() &&
                        d.origin.find(c.origin) != std::string::npos &&
                        d.message.find(c.message) != std::string::npos);
    CHECK(found);
    CHECK(snapshot(dir.path()) == before);
  }
}

TEST_CASE("problems in several group files are reported together", "[config][yaml]") {
  TempDir dir;
  write_minimal_configs(dir);
  dir.write("configs/model/tiny.yaml", "n_layers: 2\nn_layers: 3\n");
  dir.write("configs/attention/mha.yaml", "kind: !!str mha\n");
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  request.overrides = {"seed=-1"};
  auto errors = compose_errors(request);
  REQUIRE(errors.size() == 3);
  CHECK_THAT(errors[0].origin, Catch::EndsWith("model/tiny.yaml:2:1"));
  CHECK_THAT(errors[1].origin, Catch::EndsWith("attention/mha.yaml:1:7"));
  CHECK(errors[2].key == "seed");
}

TEST_CASE("a missing config.yaml says where attnlab looked", "[config][yaml]") {
  TempDir dir;
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  request.overrides = {"seed=["};
  auto errors = compose_errors(request);
  REQUIRE(errors.size() == 2);  // the malformed override is reported too
  CHECK(errors[0].key == "seed");
  CHECK(errors[1].origin == (dir.path() / "configs/config.yaml").string());
  CHECK_THAT(errors[1].message, Catch::StartsWith("no such file"));
  CHECK(snapshot(dir.path()).empty());
}

TEST_CASE("all duplicate keys of a file are reported together", "[config][yaml]") {
  try {
    config::load_yaml_string("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "x.yaml");
    FAIL("expected a UserError");
  } catch (const UserError& e) {
    REQUIRE(e.diagnostics().size() == 2);
    CHECK(e.diagnostics()[0].origin == "x.yaml:4:3");
    CHECK(e.diagnostics()[0].message == "duplicate key (first defined at x.yaml:3:3)");
    CHECK(e.diagnostics()[1].origin == "x.yaml:5:1");
  }
}

TEST_CASE("the loader keeps order, quoting, nulls and small aliases", "[config][yaml]") {
  auto y = config::load_yaml_string("# @package _global_\nb: '3'\na: 3\nn: ~\nbase: &x [1, 2]\ncopy: *x\n", "f.yaml");
  CHECK(y.package == "_global_");
  REQUIRE(y.root.entries.size() == 5);
  CHECK(y.root.entries[0].first == "b");
  CHECK(y.root.find("b")->quoted);
  CHECK_FALSE(y.root.find("a")->quoted);
  CHECK(y.root.find("n")->is_null());
  CHECK(y.root.find("copy")->same_value(*y.root.find("base")));
  CHECK(y.root.find("a")->origin == "f.yaml:3:4");
  CHECK(config::load_yaml_string("", "e.yaml").root.entries.empty());
}

TEST_CASE("the binary rejects unsafe YAML with exit code 2", "[config][yaml][cli]") {
  TempDir dir;
  write_minimal_configs(dir);
  dir.write("configs/model/tiny.yaml", "n_layers: 2\nn_layers: 3\n");
  auto before = snapshot(dir.path());
  auto r = run_attnlab("--cfg --config-dir configs", dir.path());
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("configs/model/tiny.yaml:2:1: 'n_layers': duplicate key (first defined at configs/model/tiny.yaml:1:1)"));
  CHECK(snapshot(dir.path()) == before);
}

TEST_CASE("a UTF-8 byte-order mark before the package header is not content", "[config][yaml]") {
  auto loaded = config::load_yaml_string("\xEF\xBB\xBF# @package _global_\nseed: 3\n", "b.yaml");
  CHECK(loaded.package == "_global_");
  REQUIRE(loaded.root.find("seed") != nullptr);
  CHECK(loaded.root.find("seed")->value == "3");
}
