// User errors carry every diagnostic, each naming key and origin.
#include <catch2/catch.hpp>

#include "core/error.h"

using attnlab::Diagnostic;
using attnlab::UserError;

TEST_CASE("a UserError lists every diagnostic with key and origin", "[core]") {
  UserError e(std::vector<Diagnostic>{{"model.n_heads", "override #1 'model.n_heads=x'", "expected an integer"},
                                      {"model.d_model", "configs/model/tiny.yaml:3:10", "must be positive"}});
  std::string msg = e.what();
  CHECK(e.diagnostics().size() == 2);
  CHECK_THAT(msg, Catch::Contains("2 problems"));
  CHECK_THAT(msg, Catch::Contains("override #1 'model.n_heads=x': 'model.n_heads': expected an integer"));
  CHECK_THAT(msg, Catch::Contains("configs/model/tiny.yaml:3:10: 'model.d_model': must be positive"));
}
