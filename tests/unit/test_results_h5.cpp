// The HDF5 helpers: extendible datasets grow in place, strings keep their
// bytes, and failures name the file and the object.
#include <catch2/catch.hpp>

#include <limits>

#include "core/error.h"
#include "results/h5.h"
#include "temp_dir.h"

namespace h5 = attnlab::results::h5;
using attnlab::test::TempDir;

TEST_CASE("1-D datasets are extendible: appends land after the existing rows", "[results]") {
  TempDir dir;
  auto path = dir.path / "t.h5";
  {
    h5::File f = h5::create_file(path);
    h5::Group g = h5::create_group(f.id(), "/series/nested");
    h5::write_f64(g.id(), "x", {1.0, 2.0});
    h5::write_i64(g.id(), "n", {});
    h5::write_strings(g.id(), "s", {"α"});
    g.close();
    f.close();
  }
  for (int round = 0; round < 3; ++round) {  // reopen and append, as a long-lived writer would
    h5::File f = h5::open_file_rw(path);
    h5::Group g = h5::open_group(f.id(), "series/nested");
    h5::append_f64(g.id(), "x", std::vector<double>(200, round));  // crosses a chunk boundary
    h5::append_i64(g.id(), "n", {std::numeric_limits<int64_t>::min(), round});
    h5::append_strings(g.id(), "s", {"β" + std::to_string(round), ""});
  }
  h5::File f = h5::open_file_read(path);
  h5::Group g = h5::open_group(f.id(), "/series/nested");
  auto x = h5::read_f64(g.id(), "x");
  REQUIRE(x.size() == 602);
  CHECK(x[0] == 1.0);
  CHECK(x[2] == 0.0);
  CHECK(x[601] == 2.0);
  CHECK(h5::read_i64(g.id(), "n") ==
        std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 0, std::numeric_limits<int64_t>::min(), 1,
                             std::numeric_limits<int64_t>::min(), 2});
  CHECK(h5::read_strings(g.id(), "s") == std::vector<std::string>{"α", "β0", "", "β1", "", "β2", ""});
  auto kids = h5::list_children(f.id());
  CHECK(kids.groups == std::vector<std::string>{"series"});
  CHECK(kids.datasets.empty());
  CHECK(h5::exists(f.id(), "series/nested/x"));
  CHECK_FALSE(h5::exists(f.id(), "series/missing/x"));
}

TEST_CASE("HDF5 failures name the file and the object", "[results]") {
  TempDir dir;
  auto path = dir.path / "named.h5";
  h5::File f = h5::create_file(path);
  CHECK_THROWS_WITH(h5::read_f64(f.id(), "no_such_column"),
                    Catch::Contains("named.h5") && Catch::Contains("no_such_column"));
  h5::write_strings(f.id(), "text", {"a"});
  CHECK_THROWS_WITH(h5::read_f64(f.id(), "text"), Catch::Contains("holds no numbers"));
  CHECK_THROWS_WITH(h5::write_attr(f.id(), "bad", std::string("a\0b", 3)), Catch::Contains("NUL"));
  CHECK_THROWS_WITH(h5::open_file_read(dir.path / "absent.h5"), Catch::Contains("absent.h5"));
}
