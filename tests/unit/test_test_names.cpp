// ctest registers every test case by name (catch_discover_tests), and CMake
// splits a name at ';' into two tests that match nothing and so "pass"
// without running. No test name may contain one.
#include <catch2/catch.hpp>

#include <string>

TEST_CASE("no test case name contains a semicolon (ctest would split it and pass it without running it)",
          "[meta]") {
  const auto& all = Catch::getRegistryHub().getTestCaseRegistry().getAllTests();
  REQUIRE(all.size() > 100);
  for (const auto& test : all) {
    INFO(test.name);
    CHECK(test.name.find(';') == std::string::npos);
  }
}
