// A really full disk, not a failpoint: training on a small tmpfs that fills
// during a checkpoint or during the run file's commit, and under a file-size
// limit (ulimit -f, SIGXFSZ). Each run must exit 1 naming the file and the
// reason, leave no *.tmp and no crash, record "failed" where the disk still
// allows, and, once space is freed, a re-run must end bit for bit where an
// uninterrupted run ends. Needs root's `mount -t tmpfs`; elsewhere each case
// reports a skip.
#include <catch2/catch.hpp>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <filesystem>

#include "../unit/skip.h"
#include "results/run_log.h"
#include "run_compare.h"
#include "test_support.h"

namespace fs = std::filesystem;
using attnlab::results::RunLog;
using attnlab::test::TempDir;
using attnlab::test::write_bytes;
using attnlab::testing::run_cli;
using attnlab::testing::status_of;
using attnlab::testing::temporaries;

namespace {

// A tmpfs of `megabytes` at dir/fs, unmounted when the test ends.
struct SmallDisk {
  fs::path root;
  bool mounted = false;
  SmallDisk(const fs::path& dir, int megabytes) : root(dir / "fs") {
    fs::create_directories(root);
    const std::string options = "size=" + std::to_string(megabytes) + "m";
    mounted = ::mount("tmpfs", root.c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted) ::umount2(root.c_str(), MNT_DETACH);
  }
  int64_t free_bytes() const {
    struct statvfs s {};
    ::statvfs(root.c_str(), &s);
    return static_cast<int64_t>(s.f_bavail) * static_cast<int64_t>(s.f_frsize);
  }
  // Leaves `bytes` free (rounded down to whole pages by the file system).
  void fill_leaving(int64_t bytes) const {
    const int64_t size = free_bytes() - bytes;
    REQUIRE(size > 0);
    write_bytes(root / "filler", std::string(static_cast<size_t>(size), 'x'));
  }
  void free_space() const { fs::remove(root / "filler"); }
};

// The quickstart's tiny model (checkpoints of about 5 MB) on a generated corpus.
std::string train_command(const fs::path& dir, const fs::path& run_root, int steps, int checkpoint_every) {
  return "train run.name=r run.root=" + run_root.string() + attnlab::testing::text_corpus(dir, "line ", 3000) +
         " train.steps=" + std::to_string(steps) + " train.checkpoint_every=" + std::to_string(checkpoint_every) +
         " train.batch_size=4 train.seq_len=32 model.max_seq_len=32 train.eval_every=0 train.eval_batches=1 "
         "train.log_every=5 train.threads=1";
}

// Space freed, the same command again ends where an uninterrupted run does.
void rerun_after_freeing_space(const SmallDisk& disk, const std::string& command, const fs::path& run,
                               const RunLog& reference) {
  disk.free_space();
  const auto again = run_cli(command);
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(attnlab::testing::differences(reference, RunLog::load(run / "run.h5")).empty());
}

int64_t page_rounded_size(const fs::path& dir, const std::set<std::string>& skip) {
  int64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && !skip.contains(e.path().filename().string()))
      total += (static_cast<int64_t>(e.file_size()) + 4095) / 4096 * 4096;
  return total;
}

}  // namespace

TEST_CASE("a disk that fills during a checkpoint fails the run cleanly, and a re-run converges bitwise",
          "[reliability][disk][integration]") {
  TempDir tmp;
  SmallDisk disk(tmp.path, 64);
  if (!disk.mounted) ATTNLAB_SKIP("cannot mount a tmpfs here (needs root): the real full disk is not checked");
  const fs::path run = disk.root / "r";
  const std::string command = train_command(tmp.path, disk.root, 20, 10);
  REQUIRE(run_cli(command).exit_code == 0);  // the uninterrupted run, at the same path
  const RunLog reference = RunLog::load(run / "run.h5");
  const int64_t checkpoint = static_cast<int64_t>(fs::file_size(run / "checkpoints" / "step-0000020.pt"));
  fs::remove_all(run);

  // Room for the run's small files, not for its first checkpoint.
  disk.fill_leaving(checkpoint / 2 + 256 * 1024);
  const auto full = run_cli(command);
  INFO(full.output);
  CHECK(full.exit_code == 1);
  CHECK_THAT(full.output, Catch::Contains("checkpoints/step-0000010.pt") &&
                              Catch::Contains("No space left on device"));
  CHECK_THAT(full.output, !Catch::Contains("internal error") && !Catch::Contains("terminate"));
  CHECK(temporaries(run).empty());
  CHECK(status_of(run / "run.h5") == "failed");

  rerun_after_freeing_space(disk, command, run, reference);
}

TEST_CASE("a disk that fills when the run file is committed fails cleanly, and a re-run converges bitwise",
          "[reliability][disk][integration]") {
  TempDir tmp;
  SmallDisk disk(tmp.path, 64);
  if (!disk.mounted) ATTNLAB_SKIP("cannot mount a tmpfs here (needs root): the real full disk is not checked");
  const fs::path run = disk.root / "r";
  const std::string command = train_command(tmp.path, disk.root, 10, 0);
  REQUIRE(run_cli(command).exit_code == 0);
  const RunLog reference = RunLog::load(run / "run.h5");
  // What the run writes before its first commit (config copies, lock,
  // tokenizer), then a little: room for those, not for run.h5.
  const int64_t small_files = page_rounded_size(run, {"run.h5", "step-0000010.pt"});
  fs::remove_all(run);
  disk.fill_leaving(small_files + 4096);
  const auto full = run_cli(command);
  INFO(full.output);
  CHECK(full.exit_code == 1);
  CHECK_THAT(full.output, Catch::Contains("run.h5") && Catch::Contains("No space left on device"));
  CHECK_THAT(full.output, !Catch::Contains("internal error") && !Catch::Contains("terminate"));
  CHECK(temporaries(run).empty());

  rerun_after_freeing_space(disk, command, run, reference);
}

TEST_CASE("a file-size limit (ulimit -f) fails a checkpoint with EFBIG instead of killing the process",
          "[reliability][disk][integration]") {
  TempDir tmp;
  const fs::path root = tmp.path / "runs";
  const std::string command = train_command(tmp.path, root, 20, 10);
  // 1 MiB: above every small file, below a checkpoint.
  const auto limited = run_cli(command, "ulimit -f 1024 &&");
  INFO(limited.output);
  CHECK(limited.exit_code == 1);  // not 153 (128 + SIGXFSZ)
  CHECK_THAT(limited.output, Catch::Contains("checkpoints/step-0000010.pt") && Catch::Contains("File too large"));
  CHECK(temporaries(root / "r").empty());
  CHECK(status_of(root / "r" / "run.h5") == "failed");
  const auto again = run_cli(command);
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK(status_of(root / "r" / "run.h5") == "complete");
}
