// Builds config::Node trees from yaml-cpp's event parser rather than
// YAML::Node, because the events carry what safety checks need: every key's
// position (duplicates), tags, anchors and aliases, and document boundaries.
#include "config/yaml_load.h"
#include "core/files.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <fstream>
#include <optional>
#include <map>
#include <sstream>

#include "core/error.h"

namespace attnlab::config {

namespace {

// A problem that stops loading; its origin is already formatted.
struct Fatal {
  std::string origin;
  std::string message;
};

class TreeBuilder : public YAML::EventHandler {
 public:
  explicit TreeBuilder(std::string display) : display_(std::move(display)) {}

  std::vector<Diagnostic> problems;
  std::optional<Node> root;
  int documents = 0;

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents > 1) throw Fatal{where(mark), "several YAML documents in one file; a config file holds one"};
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(Node::null(where(mark)), mark, anchor, true);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw Fatal{where(mark), "alias refers to a node that is not complete (recursive alias)"};
    expanded_ += it->second.size();
    if (expanded_ > kMaxAliasExpansion)
      throw Fatal{where(mark), fmt::format("aliases expand to more than {} nodes; write the values out", kMaxAliasExpansion)};
    add(it->second, mark, 0, false);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    check_tag(mark, tag, true);
    add(Node::scalar(value, where(mark), tag == "!"), mark, anchor, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(Node::sequence(where(mark)), mark, tag, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(Node::map(where(mark)), mark, tag, anchor);
  }
  void OnMapEnd() override { close(); }

  std::string where(const YAML::Mark& mark) const {
    return fmt::format("{}:{}:{}", display_, mark.line + 1, mark.column + 1);
  }

 private:
  struct Frame {
    Node node;
    YAML::anchor_t anchor = 0;
    bool have_key = false;
    std::string key;
    std::map<std::string, std::string> seen;  // key -> where it was first defined
  };

  void check_tag(const YAML::Mark& mark, const std::string& tag, bool scalar) {
    bool plain = tag == "?" || (scalar && tag == "!");
    if (!plain) throw Fatal{where(mark), fmt::format("YAML tags are not allowed here ('{}'); write a plain value", tag)};
  }

  void open(Node node, const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor) {
    check_tag(mark, tag, false);
    if (!stack_.empty() && stack_.back().node.is_map() && !stack_.back().have_key)
      throw Fatal{where(mark), "keys must be plain scalars, not maps or lists"};
    if (static_cast<int>(stack_.size()) >= kMaxYamlDepth)
      throw Fatal{where(mark), fmt::format("nesting deeper than {} levels", kMaxYamlDepth)};
    stack_.push_back(Frame{std::move(node), anchor, false, {}, {}});
  }

  void close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor) anchors_[f.anchor] = f.node;
    place(std::move(f.node), YAML::Mark::null_mark(), false);
  }

  void add(Node node, const YAML::Mark& mark, YAML::anchor_t anchor, bool is_null) {
    if (anchor) anchors_[anchor] = node;
    place(std::move(node), mark, is_null);
  }

  void place(Node node, const YAML::Mark& mark, bool is_null) {
    if (stack_.empty()) {
      root = std::move(node);
      return;
    }
    Frame& f = stack_.back();
    if (f.node.is_sequence()) {
      f.node.items.push_back(std::move(node));
      return;
    }
    if (!f.have_key) {  // this node is a key
      if (!node.is_scalar() || is_null)
        throw Fatal{node.origin.empty() ? where(mark) : node.origin, "keys must be plain scalars, not maps, lists or null"};
      // An experiment's `sweep:` block names override keys, which may be dotted (attention.n_kv_heads).
      const bool in_sweep = stack_.size() >= 2 && stack_.front().key == "sweep";
      if (node.value.empty() || (node.value.find('.') != std::string::npos && !in_sweep))
        problems.push_back({node.value, node.origin,
                            "a key must be a non-empty name without '.'; nest maps instead of dotted keys"});
      auto [it, inserted] = f.seen.emplace(node.value, node.origin);
      if (!inserted)
        problems.push_back({node.value, node.origin,
                            fmt::format("duplicate key (first defined at {})", it->second)});
      f.key = node.value;
      f.have_key = true;
      return;
    }
    f.have_key = false;
    if (Node* existing = f.node.find(f.key)) {
      *existing = std::move(node);  // duplicate: already reported; keep the last one
    } else {
      f.node.entries.push_back({f.key, std::move(node)});
    }
  }

  std::string display_;
  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, Node> anchors_;
  size_t expanded_ = 0;
};

std::string package_header(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    size_t p = line.find_first_not_of(" \t\r");
    if (p == std::string::npos) continue;
    if (line[p] != '#') break;
    std::string rest = line.substr(p + 1);
    size_t a = rest.find_first_not_of(" \t");
    if (a == std::string::npos || rest.compare(a, 8, "@package") != 0) continue;
    std::string pkg = rest.substr(a + 8);
    size_t b = pkg.find_first_not_of(" \t");
    size_t e = pkg.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : pkg.substr(b, e - b + 1);
  }
  return {};
}

}  // namespace

LoadedYaml load_yaml_string(const std::string& raw, const std::string& display) {
  // Editors on Windows start UTF-8 files with a byte-order mark; it is not
  // content (YAML 1.2 allows it), and left in place it would hide a
  // # @package header on the first line.
  const std::string text = raw.starts_with("\xEF\xBB\xBF") ? raw.substr(3) : raw;
  TreeBuilder builder(display);
  std::istringstream in(text);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const Fatal& f) {
    builder.problems.push_back({"", f.origin, f.message});
    throw UserError(builder.problems);
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? display : builder.where(e.mark);
    builder.problems.push_back({"", where, "invalid YAML: " + e.msg});
    throw UserError(builder.problems);
  }
  LoadedYaml out;
  out.package = package_header(text);
  if (!builder.root || builder.root->is_null()) {
    out.root = Node::map(display + ":1:1");
  } else if (!builder.root->is_map()) {
    builder.problems.push_back({"", builder.root->origin, "the top level of a config file must be a mapping of keys"});
  } else {
    out.root = std::move(*builder.root);
  }
  if (!builder.problems.empty()) throw UserError(builder.problems);
  return out;
}

LoadedYaml load_yaml_file(const std::filesystem::path& path, const std::string& display) {
  auto text = read_file(path);
  if (!text) throw_user_error("", display, "cannot read this file");
  return load_yaml_string(*text, display);
}

std::string display_path(const std::filesystem::path& path) {
  if (path.is_relative()) return path.lexically_normal().generic_string();
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  if (!ec) {
    auto rel = path.lexically_normal().lexically_relative(cwd);
    if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
  }
  return path.generic_string();
}

}  // namespace attnlab::config
