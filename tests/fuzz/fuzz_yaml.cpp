// libFuzzer target: the strict YAML loader. Any input must either load into a
// tree or raise a UserError (never crash, hang or recurse without bound); a
// loaded tree must render back to YAML.
#include <yaml-cpp/exceptions.h>

#include <cstdint>
#include <string>

#include "config/yaml_load.h"
#include "core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnlab;
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    config::LoadedYaml y = config::load_yaml_string(text, "fuzz.yaml");
    (void)config::to_yaml(y.root);
  } catch (const UserError&) {
  } catch (const YAML::Exception&) {
    // Rendering a tree with keys the emitter cannot write is not a loader bug.
  }
  return 0;
}
