// The attention registry's contract: every variant has both halves, one YAML
// in configs/attention/ that composes and passes the rules, and option
// declarations that agree where variants share a key.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "config/attention_options.h"
#include "config/compose.h"
#include "config/schema.h"
#include "model/attention/registry.h"

using namespace attnlab;

TEST_CASE("every variant has a model half, a configuration half and one YAML that composes", "[attention][config]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(ATTNLAB_SOURCE_DIR) / "configs" / "attention";
  std::set<std::string> yaml_kinds;
  for (const auto& f : fs::directory_iterator(dir))
    if (f.path().extension() == ".yaml") yaml_kinds.insert(f.path().stem().string());
  const auto kinds = config::attention_kinds();
  CHECK(yaml_kinds == std::set<std::string>(kinds.begin(), kinds.end()));
  CHECK(model::attention_registry().size() == config::attention_keys_registry().size());
  for (const auto& kind : kinds) {
    INFO(kind);
    CHECK(model::attention_entry(kind).kind == kind);
    config::ComposeRequest request;
    request.config_dir = fs::path(ATTNLAB_SOURCE_DIR) / "configs";
    request.overrides = {"attention=" + kind};
    const auto composed = config::compose(request);  // the rules pass on the tiny model
    CHECK(composed.run.model.attention.kind == kind);
    // Every key the YAML sets is one the variant declares (or one every variant has).
    const auto& keys = config::attention_keys(kind);
    for (const auto& o : keys.options) CHECK(config::find_key("attention." + o.key) != nullptr);
  }
}

TEST_CASE("variants that share a key declare it alike, and unknown keys are refused", "[attention][config]") {
  const auto& merged = config::attention_options();  // throws when two declarations disagree
  std::set<std::string> keys;
  for (const auto& o : merged) CHECK(keys.insert(o.key).second);
  for (const auto& v : config::attention_keys_registry())
    for (const auto& o : v.options) {
      const auto& d = config::declared_option(o.key);
      CHECK(d.is_enum == o.is_enum);
      CHECK(d.min == o.min);
      CHECK(d.max == o.max);
      CHECK(d.default_int == o.default_int);
      CHECK(d.default_word == o.default_word);
    }
  AttentionConfig a;
  CHECK_THROWS_AS(a.integer("no_such_key"), Error);
  CHECK_THROWS_AS(a.set("decode", 3), Error);  // a choice, not an integer
  CHECK(a.integer("kv_rank") == 0);            // unset: the declared default
  CHECK(a.set("kv_rank", 7).integer("kv_rank") == 7);
}
