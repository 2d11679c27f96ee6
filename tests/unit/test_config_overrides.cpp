// The override grammar: what each form parses into, and the typed reading of
// scalar text that the schema relies on.
#include <catch2/catch.hpp>

#include <cmath>

#include "config/overrides.h"
#include "config/scalars.h"
#include "core/error.h"

using namespace attnlab;
using namespace attnlab::config;

TEST_CASE("override operators and keys", "[config][overrides]") {
  auto set = parse_override("model.n_heads=8", 1);
  CHECK(set.op == OverrideOp::Set);
  CHECK(set.key == "model.n_heads");
  REQUIRE(set.value);
  CHECK(set.value->value == "8");
  CHECK(set.origin == "override #1 'model.n_heads=8'");
  CHECK(parse_override("+a.b=1", 1).op == OverrideOp::Add);
  CHECK(parse_override("++a.b=1", 1).op == OverrideOp::Force);
  auto del = parse_override("~a.b", 2);
  CHECK(del.op == OverrideOp::Delete);
  CHECK_FALSE(del.value);
  CHECK(parse_override("~a.b=3", 2).value->value == "3");
  CHECK(parse_override("attention=mla", 1).key == "attention");
}

TEST_CASE("override values", "[config][overrides]") {
  auto v = [](const std::string& text) { return *parse_override("k=" + text, 1).value; };
  CHECK(v("'a, b'").value == "a, b");
  CHECK(v("'a, b'").quoted);
  CHECK(v(R"("it\"s")").value == "it\"s");
  CHECK(v("null").is_null());
  CHECK(v("~").is_null());
  CHECK(v("").is_scalar());
  CHECK(v("").value.empty());
  auto list = v("[1, [2, 3], 'x']");
  REQUIRE(list.is_sequence());
  REQUIRE(list.items.size() == 3);
  CHECK(list.items[1].items[1].value == "3");
  CHECK(list.items[2].quoted);
  CHECK(v("[]").items.empty());
  auto map = v("{a: 1, b: [2]}");
  REQUIRE(map.is_map());
  CHECK(map.find("b")->items[0].value == "2");
  CHECK(v("${env:X,a,b}").value == "${env:X,a,b}");  // commas inside ${} do not sweep
  CHECK(v(" padded ").value == "padded");
  CHECK(to_flow(v("[1,'a b',null]")) == "[1,'a b',null]");
}

TEST_CASE("sweep values", "[config][overrides]") {
  auto values = [](const std::string& text) {
    std::vector<std::string> out;
    for (const auto& n : parse_override(text, 1).sweep) out.push_back(to_flow(n));
    return out;
  };
  CHECK(values("a=1,2,3") == std::vector<std::string>{"1", "2", "3"});
  CHECK(values("a=[1,2],[3]") == std::vector<std::string>{"[1,2]", "[3]"});
  CHECK(values("a=choice(x, 'y z')") == std::vector<std::string>{"x", "'y z'"});
  CHECK(values("a=range(0,3)") == std::vector<std::string>{"0", "1", "2"});
  CHECK(values("a=range(10,0,-4)") == std::vector<std::string>{"10", "6", "2"});
  CHECK(values("a=range(0,1,0.25)") == std::vector<std::string>{"0", "0.25", "0.5", "0.75"});
  auto g = parse_override("attention=glob(m*, g?a)", 1);
  REQUIRE(g.glob);
  CHECK(*g.glob == std::vector<std::string>{"m*", "g?a"});
  CHECK(g.is_sweep());
  auto z = parse_override("zip(attention=[mha,gqa],+attention.n_kv_heads=[4,2])", 1);
  REQUIRE(z.zip.size() == 2);
  CHECK(z.zip[1].op == OverrideOp::Add);
  CHECK(z.zip[1].key == "attention.n_kv_heads");
  CHECK(z.zip[1].values[1].value == "2");
  CHECK_FALSE(parse_override("a=[1,2]", 1).is_sweep());
}

TEST_CASE("malformed overrides are all reported together", "[config][overrides]") {
  try {
    parse_overrides({"a=1", "b", "c=[", "d=range(0,1e9)"});
    FAIL("expected a UserError");
  } catch (const UserError& e) {
    REQUIRE(e.diagnostics().size() == 3);
    CHECK(e.diagnostics()[0].origin == "override #2 'b'");
    CHECK(e.diagnostics()[1].origin == "override #3 'c=['");
    CHECK(e.diagnostics()[2].message.find("range has more than 10000 values") == 0);
  }
}

TEST_CASE("scalar typing", "[config][overrides]") {
  CHECK(parse_int("1_000") == 1000);
  CHECK(parse_int("-7") == -7);
  CHECK_FALSE(parse_int("1__0"));
  CHECK_FALSE(parse_int("_1"));
  CHECK_FALSE(parse_int("1.0"));
  CHECK_FALSE(parse_int("99999999999999999999"));
  CHECK(parse_float("2.5e-3") == 0.0025);
  CHECK(std::isinf(*parse_float("inf")));
  CHECK(*parse_float("-.inf") < 0);
  CHECK(std::isnan(*parse_float("nan")));
  CHECK_FALSE(parse_float("0x10"));
  CHECK_FALSE(parse_float("1e"));
  CHECK(parse_bool("True") == true);
  CHECK_FALSE(parse_bool("yes"));
  CHECK(glob_match("m*", "mla"));
  CHECK(glob_match("*a", "mha"));
  CHECK_FALSE(glob_match("m?", "mla"));
  CHECK(nearest("n_head", {"n_heads", "n_layers"}) == std::optional<std::string>("n_heads"));
  CHECK_FALSE(nearest("zzzzzz", {"n_heads", "n_layers"}));
  CHECK(edit_distance("absorbde", "absorbed") == 1);
}
