// A Catch listener, not a test: the model tests use tiny shapes, where
// intra-op threads only add synchronization (40 s instead of 4 s for the model
// tests on a loaded 2-core machine), so test cases tagged [model], [attention],
// [kv] or [position] run on one thread, and the count is restored after.
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include <catch2/catch.hpp>
#include <torch/torch.h>

namespace {
class SingleThreadForTinyModels : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    for (const auto& tag : info.tags)
      if (tag == "model" || tag == "attention" || tag == "kv" || tag == "position") {
        saved_ = torch::get_num_threads();
        torch::set_num_threads(1);
        return;
      }
  }
  void testCaseEnded(const Catch::TestCaseStats&) override {
    if (saved_ > 0) torch::set_num_threads(saved_);
    saved_ = 0;
  }

 private:
  int saved_ = 0;
};
}  // namespace
CATCH_REGISTER_LISTENER(SingleThreadForTinyModels)
