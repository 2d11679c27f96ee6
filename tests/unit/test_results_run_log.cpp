// The run file: what RunLog writes is what load() reads back, for every value
// type; series keep their shape; truncate_after drops the right rows.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include <sys/wait.h>
#include <unistd.h>

#include "core/error.h"
#include "results/run_log.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using attnlab::results::AttrValue;
using attnlab::results::Event;
using attnlab::results::RunLog;
using attnlab::test::read_bytes;
using attnlab::test::TempDir;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// Equal as stored values: NaN equals NaN, and -0.0 differs from +0.0.
bool same_double(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

bool same_attr(const AttrValue& a, const AttrValue& b) {
  if (a.index() != b.index()) return false;
  if (std::holds_alternative<double>(a)) return same_double(std::get<double>(a), std::get<double>(b));
  return a == b;
}

void require_same(const RunLog& a, const RunLog& b) {
  REQUIRE(a.attrs().size() == b.attrs().size());
  for (const auto& [group, attrs] : a.attrs()) {
    INFO("group " << group);
    REQUIRE(b.attrs().contains(group));
    REQUIRE(b.attrs().at(group).size() == attrs.size());
    for (const auto& [name, value] : attrs) {
      INFO("attribute " << name);
      const AttrValue* other = b.attr(group, name);
      REQUIRE(other != nullptr);
      CHECK(same_attr(value, *other));
    }
  }
  REQUIRE(a.series_names() == b.series_names());
  for (const auto& series : a.series_names()) {
    for (const auto& col : {"step", "loss", "val_ppl", "length", "lr"}) {
      auto x = a.column(series, col), y = b.column(series, col);
      INFO("series " << series << " column " << col);
      REQUIRE(x.size() == y.size());
      for (size_t i = 0; i < x.size(); ++i) CHECK(same_double(x[i], y[i]));
    }
  }
  REQUIRE(a.events().size() == b.events().size());
  for (size_t i = 0; i < a.events().size(); ++i) {
    CHECK(a.events()[i].step == b.events()[i].step);
    CHECK(a.events()[i].kind == b.events()[i].kind);
    CHECK(a.events()[i].message == b.events()[i].message);
  }
}

RunLog sample_log(const fs::path& path) {
  RunLog log(path);
  log.set_attr("/", "status", std::string("running"));
  log.set_attr("/", "seed", int64_t{-7});
  log.set_attr("/", "big", std::numeric_limits<int64_t>::max());
  log.set_attr("/", "small", std::numeric_limits<int64_t>::min());
  log.set_attr("/", "config_yaml", std::string("model:\n  n_layers: 2\n"));
  log.set_attr("/", "empty", std::string());
  log.set_attr("/", "greeting", std::string("Καλημέρα, 世界 — ünïcödé 🚀"));
  log.set_attr("model", "kv_bytes_per_token", int64_t{512});
  log.set_attr("/model", "attention", std::string("gqa"));
  log.set_attr("/summary", "nan", kNaN);
  log.set_attr("/summary", "inf", kInf);
  log.set_attr("/summary", "minus_inf", -kInf);
  log.set_attr("/summary", "minus_zero", -0.0);
  log.set_attr("/summary", "tiny", 5e-324);
  log.set_attr("/summary", "final_val_ppl", 12.5);
  for (int s = 1; s <= 300; ++s) {
    log.append("train", {{"step", s}, {"loss", 5.0 / s}, {"lr", s == 7 ? kNaN : 1e-3}});
  }
  log.append("train", {{"step", 301}, {"loss", kInf}, {"lr", -kInf}});
  log.append("eval", {{"step", 100}, {"val_ppl", 30.0}});
  log.append("eval", {{"step", 200}, {"val_ppl", 20.0}});
  log.append("eval/context", {{"length", 64}, {"val_ppl", 21.0}});
  log.append("eval/context", {{"length", 128}, {"val_ppl", 19.5}});
  log.add_event({0, "start", "Ἐν ἀρχῇ ἦν ὁ λόγος"});
  log.add_event({150, "checkpoint", ""});
  log.add_event({301, "diverged", "loss is inf"});
  return log;
}

}  // namespace

TEST_CASE("a committed run file reads back exactly, for every value type", "[results]") {
  TempDir dir;
  RunLog log = sample_log(dir.path / "run" / "run.h5");
  log.commit();
  REQUIRE(fs::exists(dir.path / "run" / "run.h5"));
  CHECK_FALSE(fs::exists(dir.path / "run" / "run.h5.tmp"));

  RunLog back = RunLog::load(dir.path / "run" / "run.h5");
  require_same(log, back);
  CHECK(std::get<std::string>(*back.attr("/", "greeting")) == "Καλημέρα, 世界 — ünïcödé 🚀");
  CHECK(std::get<int64_t>(*back.attr("/", "schema_version")) == attnlab::results::kRunSchemaVersion);
  CHECK(std::isnan(std::get<double>(*back.attr("summary", "nan"))));
  CHECK(back.column("train", "loss").size() == 301);
  CHECK(back.column("eval/context", "length") == std::vector<double>{64, 128});
  CHECK(back.column("eval", "missing").empty());
  CHECK(back.series_names() == std::vector<std::string>{"eval", "eval/context", "train"});
}

TEST_CASE("load then commit reproduces the same file byte for byte", "[results]") {
  TempDir dir;
  fs::path file = dir.path / "run.h5";
  RunLog original = sample_log(file);
  original.commit();
  std::string first = read_bytes(file);
  RunLog::load(file).commit();  // rewrites run.h5 from what was read
  CHECK(read_bytes(file) == first);
  require_same(original, RunLog::load(file));
}

TEST_CASE("rows must keep the columns of a series' first row", "[results]") {
  RunLog log("unused.h5");
  log.append("train", {{"step", 1}, {"loss", 2.0}});
  CHECK_THROWS_WITH(log.append("train", {{"step", 2}}), Catch::Contains("missing: [loss]"));
  CHECK_THROWS_WITH(log.append("train", {{"step", 2}, {"loss", 1.0}, {"lr", 0.1}}),
                    Catch::Contains("unexpected: [lr]"));
  CHECK(log.column("train", "step").size() == 1);  // the bad rows left nothing behind
  CHECK_THROWS_AS(log.append("train", {}), attnlab::Error);
  CHECK_THROWS_AS(log.append("/train", {{"step", 1}}), attnlab::Error);
  CHECK_THROWS_AS(log.append("events", {{"step", 1}}), attnlab::Error);
  CHECK_THROWS_AS(log.append("eval", {{"a/b", 1}}), attnlab::Error);
  // A column cannot share its name with a nested series (both would be /eval/context).
  log.append("eval/context", {{"length", 64}});
  CHECK_THROWS_AS(log.append("eval", {{"context", 1}}), attnlab::Error);
  CHECK_THROWS_AS(log.set_attr("/", "schema_version", int64_t{2}), attnlab::Error);
  // HDF5 strings end at NUL: refused when set, not later at commit.
  CHECK_THROWS_WITH(log.set_attr("/", "note", std::string("a\0b", 3)), Catch::Contains("NUL"));
  CHECK_THROWS_WITH(log.add_event({1, "eval", std::string("x\0", 2)}), Catch::Contains("NUL"));
  CHECK(log.events().empty());
}

TEST_CASE("add_column gives a series' existing rows a value for a new setting", "[results]") {
  RunLog log("unused.h5");
  log.append("eval/context", {{"context", 64}, {"ppl", 5.0}});
  log.append("eval/context", {{"context", 128}, {"ppl", 6.0}});
  // Rows written before the setting existed could not take a row that has it...
  CHECK_THROWS_AS(log.append("eval/context", {{"context", 64}, {"ppl", 5.5}, {"cache_dtype", 3}}), attnlab::Error);
  log.add_column("eval/context", "cache_dtype", 0);
  CHECK(log.column("eval/context", "cache_dtype") == std::vector<double>{0, 0});
  log.append("eval/context", {{"context", 64}, {"ppl", 5.5}, {"cache_dtype", 3}});
  CHECK(log.column("eval/context", "cache_dtype") == std::vector<double>{0, 0, 3});
  log.add_column("eval/context", "cache_dtype", 7);  // already there: unchanged
  CHECK(log.column("eval/context", "cache_dtype") == std::vector<double>{0, 0, 3});
  log.add_column("eval/recall", "cache_dtype", 0);   // no such series: nothing created
  CHECK(log.columns("eval/recall").empty());
  CHECK_THROWS_AS(log.add_column("eval/context", "a/b", 0), attnlab::Error);
}

TEST_CASE("truncate_after drops exactly the rows past a step", "[results]") {
  RunLog log("unused.h5");
  for (int s = 10; s <= 100; s += 10) log.append("train", {{"step", s}, {"loss", 100.0 - s}});
  for (int s : {50, 100}) log.append("eval", {{"step", s}, {"val_ppl", s / 10.0}});
  log.append("eval/context", {{"length", 256}, {"val_ppl", 9.0}});
  log.add_event({90, "checkpoint", "kept"});

  log.truncate_after(60);
  CHECK(log.column("train", "step") == std::vector<double>{10, 20, 30, 40, 50, 60});
  CHECK(log.column("train", "loss") == std::vector<double>{90, 80, 70, 60, 50, 40});
  CHECK(log.column("eval", "step") == std::vector<double>{50});
  CHECK(log.column("eval", "val_ppl") == std::vector<double>{5.0});
  CHECK(log.column("eval/context", "length") == std::vector<double>{256});  // no step column: untouched
  CHECK(log.events().size() == 1);                                           // events are history
  log.truncate_after(0);
  CHECK(log.column("train", "step").empty());
  // The series keeps its columns, so the next row is still checked against them.
  CHECK_THROWS_AS(log.append("train", {{"step", 1}}), attnlab::Error);
  log.append("train", {{"step", 1}, {"loss", 3.0}});
  CHECK(log.column("train", "loss") == std::vector<double>{3.0});
}

TEST_CASE("a failed commit leaves the previous run file intact", "[results]") {
  TempDir dir;
  fs::path file = dir.path / "run.h5";
  RunLog log(file);
  log.set_attr("/", "status", std::string("running"));
  log.append("train", {{"step", 1}, {"loss", 4.0}});
  log.commit();
  std::string committed = read_bytes(file);

  log.set_attr("/", "status", std::string("complete"));
  log.append("train", {{"step", 2}, {"loss", 3.0}});

  SECTION("the temporary file cannot be created") {
    fs::create_directory(dir.path / "run.h5.tmp");  // something else is in the way
    CHECK_THROWS_WITH(log.commit(), Catch::Contains("run.h5.tmp"));
    CHECK(fs::is_directory(dir.path / "run.h5.tmp"));  // not ours: left alone
  }
  SECTION("the directory is not writable") {
    fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                  fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
    if (::geteuid() != 0) {
      CHECK_THROWS_AS(log.commit(), attnlab::Error);
    } else {
      // Root ignores permissions: commit from a child that drops to 'nobody'.
      pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        int code = 3;
        if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
          try {
            log.commit();
            code = 1;  // the commit wrongly succeeded
          } catch (const attnlab::Error&) {
            code = 0;
          } catch (...) {
            code = 2;
          }
        }
        ::_exit(code);
      }
      int status = 0;
      ::waitpid(pid, &status, 0);
      REQUIRE(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
    fs::permissions(dir.path, fs::perms::owner_all);
    CHECK_FALSE(fs::exists(dir.path / "run.h5.tmp"));
  }
  CHECK(read_bytes(file) == committed);
  RunLog back = RunLog::load(file);
  CHECK(std::get<std::string>(*back.attr("/", "status")) == "running");
  CHECK(back.column("train", "step") == std::vector<double>{1});
}

TEST_CASE("a commit whose rename fails removes its temporary file", "[results]") {
  TempDir dir;
  fs::create_directories(dir.path / "run.h5" / "occupied");  // the target is a non-empty directory
  RunLog log(dir.path / "run.h5");
  log.append("train", {{"step", 1}, {"loss", 1.0}});
  CHECK_THROWS_WITH(log.commit(), Catch::Contains("cannot rename"));
  CHECK_FALSE(fs::exists(dir.path / "run.h5.tmp"));
  CHECK(fs::is_directory(dir.path / "run.h5" / "occupied"));
}

TEST_CASE("loading something that is not a run file says which file", "[results]") {
  TempDir dir;
  CHECK_THROWS_WITH(RunLog::load(dir.path / "absent.h5"), Catch::Contains("absent.h5"));
  std::ofstream(dir.path / "text.h5") << "not hdf5";
  CHECK_THROWS_WITH(RunLog::load(dir.path / "text.h5"), Catch::Contains("text.h5"));
}
