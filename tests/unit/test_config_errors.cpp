// Bad overrides against the real configs/: each must fail with a diagnostic
// naming the key, where the value came from and what was expected, and must
// write nothing (compose runs in an empty working folder that stays empty).
#include <catch2/catch.hpp>

#include <set>

#include "config_test_util.h"

using namespace attnlab;
using namespace attnlab::test;

namespace {

struct BadCase {
  std::vector<std::string> overrides;
  std::string key;      // the diagnostic's key
  std::string origin;   // a part of its origin
  std::string message;  // a part of its message
};

// Runs in an empty folder, restoring the working directory afterwards.
class InEmptyDir {
 public:
  InEmptyDir() : old_(fs::current_path()) { fs::current_path(dir_.path()); }
  ~InEmptyDir() { fs::current_path(old_); }
  const fs::path& path() const { return dir_.path(); }

 private:
  TempDir dir_;
  fs::path old_;
};

std::string all_text(const std::vector<Diagnostic>& ds) {
  std::string s;
  for (const auto& d : ds) s += d.to_string() + "\n";
  return s;
}

}  // namespace

TEST_CASE("bad overrides fail with key, origin and expectation, and write nothing", "[config]") {
  // clang-format off
  const std::vector<BadCase> cases = {
    // malformed overrides: the caret sits under the column where parsing stopped
    {{"model.n_layers"}, "", "override #1 'model.n_layers'", "expected '=' after the key\n    model.n_layers\n                  ^"},
    {{"seed=1", "=3"}, "", "override #2 '=3'", "expected a key"},
    {{"model..x=1"}, "model..x", "override #1", "expected a key segment after '.'\n    model..x=1\n          ^"},
    {{"optim.betas=[0.9,0.95"}, "optim.betas", "override #1", "expected ',' or ']' to close the list opened here\n    optim.betas=[0.9,0.95\n                ^"},
    {{"run.name='abc"}, "run.name", "override #1", "unterminated quoted string (opened here)\n    run.name='abc\n             ^"},
    {{"seed=foo(1)"}, "seed", "override #1", "unknown sweep function 'foo'"},
    {{"seed=range(1)"}, "seed", "override #1", "range takes (start, stop) or (start, stop, step)"},
    {{"seed=range(5,1)"}, "seed", "override #1", "range is empty"},
    {{"seed=1,,2"}, "seed", "override #1", "expected a value before ','\n    seed=1,,2\n           ^"},
    {{"zip(seed=[1,2],train.steps=[1])"}, "", "override #1", "zip(...) lists must have the same length"},
    {{"optim.lr=1e-3)"}, "optim.lr", "override #1", "unexpected ')'"},
    {{"seed=${model.d_model"}, "seed", "override #1", "unterminated interpolation '${'"},
    {{"~seed=1,2"}, "seed", "override #1", "a deletion cannot sweep"},
    {{"seed=1,2"}, "seed", "override #1 'seed=1,2'", "is a sweep; sweeps need a multirun"},
    // unknown keys, groups and options, with did-you-mean
    {{"model.n_head=3"}, "model.n_head", "override #1", "no such key to override (did you mean 'model.n_heads'?)"},
    {{"model.kv_rank=3"}, "model.kv_rank", "override #1", "did you mean 'attention.kv_rank'?"},
    {{"atention=mla"}, "atention", "override #1", "no such key to override (did you mean 'attention'?)"},
    {{"+model.foo=1"}, "model.foo", "override #1 '+model.foo=1'", "unknown key"},
    {{"+model.n_layers=3"}, "model.n_layers", "override #1", "already exists (set at "},
    {{"~position.theta", "position.theta=5"}, "position.theta", "override #2", "is not set here (deleted, or its map replaced, earlier); use ++position.theta=VALUE"},
    {{"~model.nope"}, "model.nope", "override #1", "no such key to delete"},
    {{"~seed=5"}, "seed", "override #1", "not deleted: its value is 0"},
    {{"seed.x=1"}, "seed.x", "override #1", "'seed' is not a mapping"},
    {{"attention=mlaa"}, "attention", "override #1", "no option 'mlaa' in group 'attention' (did you mean 'mla'?); options: gla, gqa, gta, mha, mla, mqa, tpa"},
    {{"+attention=mla"}, "attention", "override #1", "already in the defaults list"},
    {{"model=[tiny]"}, "model", "override #1", "expected an option name of group 'model'"},
    {{"+experiment=quickstrat"}, "experiment", "override #1", "no experiment 'quickstrat' in"},
    // wrong types and ranges
    {{"model.d_model=abc"}, "model.d_model", "override #1", "expected an integer in [1, 65536], got 'abc'"},
    {{"model.n_layers=2.5"}, "model.n_layers", "override #1", "expected an integer in [1, 1024], got '2.5'"},
    {{"model.tie_embeddings=yes"}, "model.tie_embeddings", "override #1", "expected true or false, got 'yes'"},
    {{"optim.lr='0.1'"}, "optim.lr", "override #1", "got the string '0.1'"},
    {{"optim.betas=[0.9]"}, "optim.betas", "override #1", "expected a list of two numbers in [0, 1)"},
    {{"train.steps=0"}, "train.steps", "override #1", "0 trains nothing; it is only for a run that starts from converted weights"},
    {{"train.steps=-1"}, "train.steps", "override #1", "expected an integer in [0, 1000000000000], got '-1'"},
    {{"optim.lr=inf"}, "optim.lr", "override #1", "expected a number in (0, 10], got 'inf'"},
    {{"optim.lr=nan"}, "optim.lr", "override #1", "got 'nan'"},
    {{"position.fraction=0"}, "position.fraction", "override #1", "a number in (0, 1]"},
    {{"attention.decode=absorb"}, "attention.decode", "override #1", "one of naive, absorbed, got 'absorb' (did you mean 'absorbed'?)"},
    {{"++run=3"}, "run", "override #1", "expected a mapping of keys (a config section)"},
    // interpolation
    {{"++model.n_layers=${nope.x}"}, "model.n_layers", "override #1", "refers to 'nope.x', which does not exist"},
    {{"++seed=${env:ATTNLAB_TEST_SURELY_UNSET}"}, "seed", "override #1", "environment variable ATTNLAB_TEST_SURELY_UNSET is not set"},
    {{"++seed=${seed}"}, "seed", "override #1", "cyclic interpolation: seed -> seed"},
    {{"++model.n_layers=${model.d_model}", "++model.d_model=${model.n_layers}"}, "model.n_layers", "override #1",
     "cyclic interpolation: model.n_layers -> model.d_model -> model.n_layers"},
    {{"++seed=${div:7,2}"}, "seed", "override #1", "7 is not divisible by 2"},
    {{"++seed=${oops:1}"}, "seed", "override #1", "unknown resolver 'oops'"},
    // cross-key rules
    {{"data=text"}, "data.path", "data/text.yaml:3:7", "is mandatory (???" ") and was not set"},
    {{"data=text", "data.path=/nonexistent/corpus.txt"}, "data.path", "override #2", "no such file: /nonexistent/corpus.txt"},
    {{"model.d_model=130"}, "model.d_model", "override #1", "130 is not divisible by model.n_heads (4)"},
    {{"attention=gqa", "attention.n_kv_heads=3"}, "attention.n_kv_heads", "override #2", "model.n_heads (4) must be a multiple of attention.n_kv_heads (3)"},
    {{"attention=mha", "attention.n_kv_heads=2"}, "attention.n_kv_heads", "override #2", "use attention=gqa"},
    {{"attention=mla", "attention.rope_dim=7"}, "attention.rope_dim", "override #2", "7 is odd; RoPE rotates pairs"},
    {{"attention=mla", "attention.rope_dim=64"}, "attention.rope_dim", "override #2", "64 exceeds the head dim (32)"},
    {{"attention=mla", "attention.rope_mode=none"}, "attention.rope_mode", "override #2", "position=rope would be silently unused"},
    {{"attention=mla", "position.fraction=0.01"}, "position.fraction", "override #2", "of MLA's rotated width (16, attention.rope_dim) gives 0.16 rotary dims"},
    {{"position.scaling.kind=yarn"}, "position.scaling.factor", "position/rope.yaml", "1 with position.scaling.kind=yarn changes nothing (plain RoPE)"},
    {{"attention=mla", "attention.rope_mode=coupled"}, "attention.decode", "attention/mla.yaml:12:9",
     "RoPE sits between the query and W_UK, so W_UK cannot be folded into the query"},
    {{"attention=mla", "attention.rope_mode=coupled"}, "attention.decode", "attention/mla.yaml:12:9",
     "[attention.rope_mode from override #2 'attention.rope_mode=coupled']"},
    {{"model.n_heads=5"}, "model.d_model", "model/tiny.yaml:3:10", "128 is not divisible by model.n_heads (5) and "
     "model.head_dim is 0 (derived); change one, or set model.head_dim [model.n_heads from override #1 'model.n_heads=5']"},
    {{"attention=mla", "position=alibi"}, "attention.rope_mode", "attention/mla.yaml", "position.kind is alibi"},
    {{"attention=mla", "model.head_dim=6"}, "attention.rope_dim", "attention/mla.yaml", "derives a decoupled rotary key of head dim / 2 = 3 dims from the head dim (6)"},
    {{"position.fraction=0.3"}, "position.fraction", "override #1", "gives 9.6 rotary dims"},
    {{"position=alibi", "position.scaling.kind=yarn"}, "position.scaling.kind", "override #2", "yarn scaling extends RoPE"},
    {{"run.name=../escape"}, "run.name", "override #1", "is not a safe directory name"},
    {{"run.name=a/b"}, "run.name", "override #1", "stays inside run.root"},
    {{"model.kv_share=3"}, "model.kv_share", "override #1", "3 layers per shared cache exceeds model.n_layers (2); use at most 2"},
    {{"model.kv_share=0"}, "model.kv_share", "override #1", "expected an integer in [1, 1024], got '0'"},
    {{"train.seq_len=4096"}, "train.seq_len", "override #1", "longer than model.max_seq_len (128)"},
    {{"data.tokenizer=sentencepiece"}, "data.vocab_size", "built-in default", "sentencepiece needs a vocabulary size"},
    {{"optim.min_lr=0.1"}, "optim.min_lr", "override #1", "0.1 is above optim.lr (0.001)"},
    {{"data.dir="}, "data.dir", "override #1", "must not be empty"},
    {{"run.name=" + std::string(201, 'a')}, "run.name", "override #1", "is 201 characters long; a run directory name has at most 200"},
    {{"train.cuda_graph=true"}, "train.cuda_graph", "override #1", "not available yet"},
    {{"data=synthetic", "data.num_pairs=40"}, "data.num_pairs", "override #2", "40 distinct keys need data.vocab_size >= 82"},
    {{"data=synthetic", "data.num_queries=9"}, "data.num_queries", "override #2", "9 queries but only 8 pairs"},
    {{"data=synthetic", "train.seq_len=16"}, "train.seq_len", "override #2", "8 pairs and 8 queries need 2 x (8 + 8) = 32 tokens"},
    {{"data=synthetic", "data.task=passkey", "data.vocab_size=12"}, "data.vocab_size", "override #3", "passkey needs filler tokens"},
    {{"data=synthetic", "data.task=copy"}, "data.task", "override #2", "mqar"},
  };
  // clang-format on
  InEmptyDir cwd;
  auto configs_before = snapshot(source_configs());
  for (const auto& c : cases) {
    std::string joined;
    for (const auto& o : c.overrides) joined += o + " ";
    INFO("overrides: " << joined);
    config::ComposeRequest request;
    request.config_dir = source_configs();
    request.overrides = c.overrides;
    auto errors = compose_errors(request);
    INFO("got:\n" << all_text(errors));
    REQUIRE_FALSE(errors.empty());
    bool found = false;
    for (const auto& d : errors)
      found = found || (d.key == c.key && d.origin.find(c.origin) != std::string::npos &&
                        d.message.find(c.message) != std::string::npos);
    CHECK(found);
    CHECK(snapshot(cwd.path()).empty());
  }
  CHECK(snapshot(source_configs()) == configs_before);
  CHECK(cases.size() >= 40);
}

TEST_CASE("every problem is reported at once", "[config]") {
  config::ComposeRequest request;
  request.config_dir = source_configs();
  request.overrides = {"model.n_head=3", "attention=mlaa", "model.x=[1", "model.d_model=abc", "run.name=../x",
                       "attention.decode=absorb"};
  auto errors = compose_errors(request);
  REQUIRE(errors.size() == 6);
  std::set<std::string> keys;
  for (const auto& d : errors) keys.insert(d.key);
  CHECK(keys == std::set<std::string>{"model.n_head", "attention", "model.x", "model.d_model", "run.name",
                                      "attention.decode"});
}

TEST_CASE("each key of a broken interpolation chain gets its own error, and only that", "[config]") {
  config::ComposeRequest request;
  request.config_dir = source_configs();
  request.overrides = {"++model.n_layers=${model.d_model}", "++model.d_model=${model.n_layers}",
                       "run.name=${run.root}", "run.root=${nope}"};
  auto errors = compose_errors(request);
  REQUIRE(errors.size() == 4);
  CHECK(errors[0].key == "run.name");
  CHECK_THAT(errors[0].message, Catch::Contains("refers to 'nope', which does not exist (via run.name -> run.root)"));
  CHECK(errors[1].key == "run.root");
  CHECK(errors[2].key == "model.n_layers");
  CHECK(errors[3].key == "model.d_model");
  CHECK(errors[3].message == "cyclic interpolation: model.n_layers -> model.d_model -> model.n_layers");
  CHECK(errors[3].origin == "override #2 '++model.d_model=${model.n_layers}'");
}

TEST_CASE("an invalid value is reported once, not again by the rules that use it", "[config]") {
  config::ComposeRequest request;
  request.config_dir = source_configs();
  request.overrides = {"model.d_model=x"};  // d_model % n_heads would otherwise be checked
  auto errors = compose_errors(request);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "model.d_model");
}

TEST_CASE("the attnlab binary exits 2 on user errors, prints them without a backtrace, writes nothing", "[config][cli]") {
  struct CliCase {
    std::string args;
    std::string expected;
  };
  const std::vector<CliCase> cases = {
      {"--cfg model.n_head=3", "override #1 'model.n_head=3': 'model.n_head': no such key to override (did you mean 'model.n_heads'?)"},
      {"--cfg 'model.x=[1,2'", "expected ',' or ']' to close the list opened here\n    model.x=[1,2\n            ^"},
      {"--cfg attention=mla attention.rope_mode=coupled", "W_UK cannot be folded into the query"},
      {"--cfg data=text", "'data.path': is mandatory"},
      {"--cfg run.name=../x attention=mlaa", "2 problems:"},
      {"--cfg seed=1,2", "is a sweep"},
  };
  TempDir cwd;
  fs::create_symlink(source_configs(), cwd.path() / "configs");
  auto before = snapshot(cwd.path());
  for (const auto& c : cases) {
    INFO(c.args);
    auto r = run_attnlab(c.args, cwd.path());
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.output, Catch::StartsWith("error: "));
    CHECK_THAT(r.output, Catch::Contains(c.expected));
    CHECK_THAT(r.output, !Catch::Contains("terminate") && !Catch::Contains("internal error"));
  }
  CHECK(snapshot(cwd.path()) == before);
}
