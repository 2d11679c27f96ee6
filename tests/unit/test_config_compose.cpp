// Good inputs: the default composition equals a known YAML text, and each
// feature (group selection, experiments, interpolation, deletion, quoting,
// numbers) changes exactly what it should.
#include <catch2/catch.hpp>

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config/attention_options.h"
#include "config/inspect.h"
#include "config/schema.h"
#include "config_test_util.h"
#include "model/attention/latent.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

config::Composed compose_with(std::vector<std::string> overrides) {
  config::ComposeRequest request;
  request.config_dir = source_configs();
  request.overrides = std::move(overrides);
  return config::compose(request);
}

// The resolved config.yaml with no overrides: every key of the schema, in schema order.
const char* const kDefaultYaml = R"(
seed: 0
data_seed: 0
run:
  name: default
  root: results
model:
  n_layers: 2
  d_model: 128
  n_heads: 4
  head_dim: 0
  d_ff: 0
  mlp: gelu
  norm: rms
  tie_embeddings: true
  max_seq_len: 128
  match_params: false
  kv_share: 1
attention:
  kind: mha
  n_kv_heads: 4
  q_rank: 0
  kv_rank: 0
  nope_dim: 0
  rope_dim: 0
  v_dim: 0
  decode: absorbed
  rope_mode: decoupled
  rope_heads: 1
  rope_spectrum: 0
  kv_norm: rms
  n_latent_heads: 0
  k_rank: 0
  v_rank: 0
  cache_dtype: fp32
  backend: auto
position:
  kind: rope
  theta: 10000.0
  fraction: 1.0
  dims: first
  scaling:
    kind: none
    factor: 1.0
    original_max_len: 0
    beta_fast: 32.0
    beta_slow: 1.0
    mscale: 1.0
    mscale_all_dim: 0.0
data:
  kind: kjv
  path: null
  tokenizer: byte
  vocab_size: 0
  val_fraction: 0.05
  task: mqar
  num_pairs: 8
  num_queries: 8
  power_a: 0.01
  passkey_digits: 5
  dir: data
optim:
  lr: 1.0e-3
  min_lr: 1.0e-4
  weight_decay: 0.1
  betas: [0.9, 0.95]
  eps: 1.0e-8
  warmup_steps: 10
  schedule: cosine
  grad_clip: 1.0
  fused: true
train:
  steps: 100
  batch_size: 8
  seq_len: 64
  grad_accum: 1
  device: cpu
  dtype: fp32
  eval_every: 50
  eval_batches: 8
  checkpoint_every: 100
  keep_checkpoints: 2
  log_every: 10
  cuda_graph: false
  threads: 0
  peak_tflops: 0
  init_from: ""
)";

}  // namespace

TEST_CASE("the default composition equals the expected YAML", "[config]") {
  auto c = compose_with({});
  CHECK(c.resolved_yaml == std::string(kDefaultYaml).substr(1));
  CHECK(c.defaults == std::vector<std::string>{"model: tiny", "attention: mha", "position: rope", "data: kjv",
                                               "optim: adamw", "train: cpu"});
  CHECK(c.overrides_yaml == "[]\n");
  CHECK(c.run.model.d_model == 128);
  CHECK(c.run.model.attention.integer("n_kv_heads") == 4);  // ${model.n_heads}
  CHECK(c.run.optim.beta2 == 0.95);
}

TEST_CASE("the resolved config composes again to the same config", "[config]") {
  // Writing resolved_yaml as the only config must give back the same RunConfig text.
  auto c = compose_with({"attention=mla", "position.theta=500000", "run.name=x"});
  TempDir dir;
  dir.write("configs/config.yaml", c.resolved_yaml);
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  CHECK(config::compose(request).resolved_yaml == c.resolved_yaml);
}

TEST_CASE("group selection lands attention and position in model.*", "[config]") {
  auto c = compose_with({"attention=mla", "position=alibi", "attention.rope_mode=none", "model=small"});
  const auto& a = c.run.model.attention;
  CHECK(a.kind == "mla");
  CHECK(a.integer("kv_rank") == 0);  // derived from the head dim by LatentOptions::widths
  const auto dims = model::LatentOptions::widths(c.run.model);
  CHECK(dims.kv_rank == 128);  // 2E, E = 384 / 6
  CHECK(dims.nope_dim == 64);
  CHECK(dims.rope_dim == 0);  // rope_mode none: no decoupled rotary key
  CHECK(dims.v_dim == 64);
  CHECK(c.run.model.position.kind == "alibi");
  CHECK(c.run.model.n_layers == 6);
  CHECK(c.defaults[0] == "model: small");
  CHECK(c.defaults[1] == "attention: mla");
}

TEST_CASE("an experiment composes at the top level, with its defaults overrides", "[config]") {
  auto c = compose_with({"+experiment=quickstart", "train.steps=7"});
  CHECK(c.run.run.name == "quickstart");
  CHECK(c.run.train.steps == 7);  // the command line wins over the experiment
  CHECK(c.run.train.batch_size == 16);
  CHECK(c.run.train.seq_len == 128);
  CHECK(c.run.train.device == "cpu");

  TempDir dir;
  write_minimal_configs(dir);
  dir.write("experiments/g.yaml", "# @package _global_\ndefaults:\n  - override /attention: gqa\nseed: 9\n");
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  request.experiment = dir.path() / "experiments/g.yaml";
  auto e = config::compose(request);
  CHECK(e.run.seed == 9);
  CHECK(e.run.model.attention.kind == "gqa");
  CHECK(e.run.model.attention.integer("n_kv_heads") == 2);
  request.overrides = {"attention=mha"};  // the command line wins over the experiment's defaults
  CHECK(config::compose(request).run.model.attention.kind == "mha");
}

TEST_CASE("_self_ ordering, optional entries and packages", "[config]") {
  TempDir dir;
  write_minimal_configs(dir);
  // _self_ first: the group file wins over config.yaml's own value.
  dir.write("configs/config.yaml",
            "defaults:\n  - _self_\n  - model: tiny\n  - optional extra: none\nmodel:\n  n_layers: 9\n");
  dir.write("configs/extra/some.yaml", "# @package _global_\nseed: 5\n");
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  auto first = config::compose(request);
  CHECK(first.run.model.n_layers == 2);
  CHECK(first.run.seed == 0);  // the optional option 'none' does not exist: skipped
  request.overrides = {"extra=some"};
  CHECK(config::compose(request).run.seed == 5);  // _global_ package
  // _self_ last (also the default when absent): config.yaml wins.
  dir.write("configs/config.yaml", "defaults:\n  - model: tiny\nmodel:\n  n_layers: 9\n");
  request.overrides = {};
  CHECK(config::compose(request).run.model.n_layers == 9);
}

TEST_CASE("override operators: set, add, force, delete, group add and removal", "[config]") {
  CHECK(compose_with({"++seed=7"}).run.seed == 7);
  CHECK(compose_with({"~seed", "+seed=5"}).run.seed == 5);
  auto deleted = compose_with({"~optim.betas", "~data.path"});
  CHECK(deleted.resolved_yaml.find("betas") == std::string::npos);
  CHECK(deleted.resolved_yaml.find("  path:") == std::string::npos);
  CHECK(deleted.run.optim.beta1 == 0.9);  // falls back to the built-in default
  // data_seed interpolates ${seed}: deleting seed alone leaves it dangling.
  CHECK(compose_with({"~seed=0", "~data_seed"}).resolved_yaml.find("seed:") == std::string::npos);
  auto no_position = compose_with({"~position"});
  CHECK(no_position.defaults.size() == 5);
  auto null_position = compose_with({"position=null", "position.kind=alibi"});
  CHECK(null_position.defaults == std::vector<std::string>{"model: tiny", "attention: mha", "data: kjv",
                                                           "optim: adamw", "train: cpu"});
  CHECK(null_position.run.model.position.kind == "alibi");
  CHECK(null_position.run.model.position.theta == 10000.0);  // built-in default: no position file composed
  TempDir dir;
  write_minimal_configs(dir);
  dir.write("configs/train/fast.yaml", "steps: 3\n");
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  request.overrides = {"+train=fast"};
  CHECK(config::compose(request).run.train.steps == 3);
}

TEST_CASE("values: quotes, lists, null, booleans, numbers with _", "[config]") {
  auto c = compose_with({"run.name='a=b'", "run.root=\"my results\"", "optim.betas=[0.8, 0.99]", "data.path=''",
                         "model.tie_embeddings=false", "train.steps=1_000", "optim.lr=3e-4", "position.theta=1_000_000.5",
                         "data.dir=my_data"});
  CHECK(c.run.run.name == "a=b");
  CHECK(c.run.run.root == "my results");
  CHECK(c.run.optim.beta1 == 0.8);
  CHECK(c.run.optim.beta2 == 0.99);
  CHECK(c.run.data.path.empty());
  CHECK_FALSE(c.run.model.tie_embeddings);
  CHECK(c.run.train.steps == 1000);
  CHECK(c.run.optim.lr == Approx(3e-4));
  CHECK(c.run.model.position.theta == 1000000.5);
  CHECK(c.run.data.dir == "my_data");
  CHECK(compose_with({"data.path=null"}).run.data.path.empty());
  CHECK(compose_with({"run.name='true'"}).resolved_yaml.find("name: \"true\"") != std::string::npos);
  // A map value replaces the whole map: keys it leaves out fall back to the built-in defaults.
  auto scaled = compose_with({"position.scaling={kind: linear, factor: 2}", "++position.scaling.beta_fast=8"});
  CHECK(scaled.run.model.position.scaling.kind == "linear");
  CHECK(scaled.run.model.position.scaling.factor == 2.0);
  CHECK(scaled.run.model.position.scaling.beta_fast == 8.0);
  CHECK(scaled.resolved_yaml.find("beta_slow") == std::string::npos);
}

TEST_CASE("overrides_yaml reads back as the overrides given", "[config]") {
  std::vector<std::string> given = {"data.dir='a, b'", "optim.betas=[0.8,0.9]", "seed=3", "run.root=\"x: y\""};
  auto c = compose_with(given);
  YAML::Node list = YAML::Load(c.overrides_yaml);
  REQUIRE(list.IsSequence());
  REQUIRE(list.size() == given.size());
  for (size_t i = 0; i < given.size(); ++i) CHECK(list[i].as<std::string>() == given[i]);
  CHECK(c.overrides == given);
}

TEST_CASE("interpolation: absolute, relative, typed, env with default, escapes", "[config]") {
  auto c = compose_with({"run.name=${attention.kind}-l${model.n_layers}", "++model.n_layers=${model.n_heads}"});
  CHECK(c.run.run.name == "mha-l4");
  CHECK(c.run.model.n_layers == 4);
  CHECK(c.resolved_yaml.find("n_layers: 4\n") != std::string::npos);
  CHECK(c.raw_yaml.find("n_layers: ${model.n_heads}") != std::string::npos);
  CHECK(compose_with({"run.name=${env:ATTNLAB_TEST_SURELY_UNSET,fallback}"}).run.run.name == "fallback");
  ::setenv("ATTNLAB_TEST_SEED", "42", 1);
  CHECK(compose_with({"seed=${oc.env:ATTNLAB_TEST_SEED}"}).run.seed == 42);
  ::unsetenv("ATTNLAB_TEST_SEED");
  CHECK(compose_with({"run.root=\\${literal}"}).run.run.root == "${literal}");
  CHECK(compose_with({"run.name=${.root}", "run.root=r1"}).run.run.name == "r1");
  CHECK(compose_with({"run.name=${..data.kind}"}).run.run.name == "kjv");
}

TEST_CASE("format_config and the groups list", "[config]") {
  auto c = compose_with({"attention=gqa"});
  std::string text = config::format_config(c, false);
  CHECK_THAT(text, Catch::StartsWith("# resolved config\n# defaults: [model: tiny, attention: gqa, position: rope"));
  CHECK_THAT(text, Catch::Contains("# overrides: attention=gqa\n"));
  CHECK_THAT(config::format_config(compose_with({"attention=mha"}), true),
             Catch::Contains("n_kv_heads: ${model.n_heads}"));
  auto groups = config::list_groups(source_configs());
  REQUIRE(groups.size() == 7);  // model, attention, position, data, optim, train; launcher (no default: sweep only)
  CHECK(groups.back().name == "launcher");
  CHECK(groups.back().selected.empty());
  CHECK(groups[1].name == "attention");
  CHECK(groups[1].options == std::vector<std::string>{"gla", "gqa", "gta", "mha", "mla", "mqa", "tpa"});
  CHECK(groups[1].selected == "mha");
  CHECK_THAT(config::format_groups(source_configs()), Catch::Contains("  position   alibi, learned, none, rope*\n"));
}

namespace {
// Counts an aggregate's members: the largest N for which T{Any x N} compiles.
struct AnyField {
  template <class T>
  operator T() const;  // NOLINT: converts to whatever the member is (never called)
};
template <class T, class... Fields>
constexpr std::size_t member_count() {
  if constexpr (requires { T{Fields{}..., AnyField{}}; })
    return member_count<T, Fields..., AnyField>();
  else
    return sizeof...(Fields);
}
// Leaf fields of RunConfig, from the structs themselves: a field added to any
// of them changes this number. Nested structs count as their leaves.
constexpr std::size_t run_config_leaves() {
  return (member_count<RunConfig>() - 5)  // run, model, data, optim, train are sections
         + member_count<RunSection>() + (member_count<ModelConfig>() - 2)  // attention, position
         + member_count<AttentionConfig>() + (member_count<PositionConfig>() - 1)  // scaling
         + member_count<RopeScalingConfig>() + member_count<DataConfig>() + member_count<OptimConfig>() +
         member_count<TrainConfig>();
}
}  // namespace

TEST_CASE("the schema covers every RunConfig field with a doc", "[config]") {
  // Every leaf is a schema key, but model.vocab_size (set by the tokenizer),
  // and optim.betas is one key for beta1 and beta2. A new field without a
  // schema entry, or a new section, fails here.
  static_assert(member_count<RopeScalingConfig>() == 7);
  // AttentionConfig's two maps (ints, words) hold the variants' own options:
  // one schema key each, as the attention registry declares them.
  CHECK(config::schema().size() + 2 == run_config_leaves() - 2 + config::attention_options().size());
  for (const auto& s : config::schema()) {
    INFO(s.key);
    CHECK_FALSE(s.doc.empty());
    CHECK(config::find_key(s.key) == &s);
  }
  CHECK(config::find_key("model.vocab_size") == nullptr);  // set from the tokenizer
}

TEST_CASE("docs/configuration.md carries the schema table as the code prints it", "[config][docs]") {
  std::ifstream in(std::filesystem::path(ATTNLAB_SOURCE_DIR) / "docs" / "configuration.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  // Regenerate with: build/release/bin/attnlab --schema
  CHECK_THAT(text.str(), Catch::Contains("```\n" + config::format_schema() + "```\n"));
}

TEST_CASE("the binary prints the resolved config and exits 0", "[config][cli]") {
  auto r = run_attnlab("--cfg attention=mla", ATTNLAB_SOURCE_DIR);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("  kind: mla\n  n_kv_heads: 0\n  q_rank: 0\n  kv_rank: 0\n  nope_dim: 0\n"));
  auto raw = run_attnlab("--cfg --raw attention=mha model.n_heads=8", ATTNLAB_SOURCE_DIR);
  CHECK(raw.exit_code == 0);
  CHECK_THAT(raw.output, Catch::Contains("n_kv_heads: ${model.n_heads}"));
  auto resolved = run_attnlab("--cfg attention=mha model.n_heads=8", ATTNLAB_SOURCE_DIR);
  CHECK_THAT(resolved.output, Catch::Contains("  kind: mha\n  n_kv_heads: 8\n"));
  auto help = run_attnlab("--help", ATTNLAB_SOURCE_DIR);
  CHECK_THAT(help.output, Catch::Contains("attention  gla, gqa, gta, mha*, mla, mqa, tpa"));
}

TEST_CASE("a group listed twice in one defaults list is refused, naming both entries", "[config]") {
  TempDir dir;
  dir.write("configs/config.yaml", "defaults:\n  - model: tiny\n  - model: small\n  - _self_\nseed: 0\n");
  dir.write("configs/model/tiny.yaml", "n_layers: 2\n");
  dir.write("configs/model/small.yaml", "n_layers: 6\n");
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  try {
    config::compose(request);
    FAIL("composed a defaults list that names model twice");
  } catch (const UserError& e) {
    CHECK_THAT(e.what(), Catch::Contains("group 'model' is listed twice") && Catch::Contains("config.yaml:2") &&
                             Catch::Contains("config.yaml:3"));
  }
}

TEST_CASE("interpolation that expands geometrically stops at 64 KiB with a short message", "[config]") {
  // Each level refers to the one below ten times: level 6 would be 40 MB.
  std::string yaml = "defaults:\n  - _self_\nseed: 0\nrun:\n  name: ${x6}\nx0: abcd\n";
  for (int level = 1; level <= 6; ++level) {
    yaml += "x" + std::to_string(level) + ": \"";
    for (int i = 0; i < 10; ++i) yaml += "${x" + std::to_string(level - 1) + "}";
    yaml += "\"\n";
  }
  TempDir dir;
  dir.write("configs/config.yaml", yaml);
  config::ComposeRequest request;
  request.config_dir = dir.path() / "configs";
  try {
    config::compose(request);
    FAIL("composed a config that expands to 40 MB");
  } catch (const UserError& e) {
    const std::string message = e.what();
    CHECK(message.size() < 4096);
    CHECK_THAT(message, Catch::Contains("'x5': expands to more than 65536 characters"));
  }
}
