// Resolution of ${...} by depth-first evaluation with a stack of keys in
// progress: a key met again while on the stack is a cycle, reported with the
// whole chain ("a.x -> a.y -> a.x").
#include "config/interpolate.h"

#include <fmt/format.h>

#include <cstdlib>
#include <limits>
#include <map>
#include <set>

#include "config/scalars.h"
#include "config/schema.h"

namespace attnlab::config {

namespace {

struct Failure {
  std::string message;
};

constexpr size_t kMaxInterpolatedBytes = 65536;

class Resolver {
 public:
  Resolver(Node& root, std::vector<Diagnostic>& problems) : root_(root), problems_(problems) {}

  void run() { visit(root_, ""); }

 private:
  enum class State { InProgress, Done, Failed };

  void visit(Node& n, const std::string& path) {
    if (n.is_map()) {
      for (auto& [k, v] : n.entries) visit(v, join_path(path, k));
    } else if (n.is_sequence()) {
      for (size_t i = 0; i < n.items.size(); ++i) visit(n.items[i], fmt::format("{}[{}]", path, i));
    } else if (n.is_scalar() && n.value.find("${") != std::string::npos) {
      auto st = state_.find(&n);
      if (st != state_.end() && st->second == State::Failed) {
        // Failed while resolving another key (a cycle, or a chain): its own error, once.
        if (reported_.insert(&n).second) problems_.push_back({path, n.origin, failure_[&n]});
        return;
      }
      try {
        resolve(n, path);
      } catch (const Failure& f) {
        reported_.insert(&n);
        problems_.push_back({path, n.origin, f.message});
      }
    }
  }

  // Resolves the scalar `n` found at `path` (and what it refers to).
  void resolve(Node& n, const std::string& path) {
    auto st = state_.find(&n);
    if (st != state_.end()) {
      if (st->second == State::Done) return;
      if (st->second == State::Failed) {
        if (stack_.empty()) return;  // its own error is reported already
        throw Failure{fmt::format("refers to '{}', which could not be resolved", path)};
      }
      std::string chain;
      for (const auto& p : stack_) chain += p + " -> ";
      throw Failure{"cyclic interpolation: " + chain + path};
    }
    if (!n.is_scalar() || n.value.find("${") == std::string::npos) return;
    state_[&n] = State::InProgress;
    stack_.push_back(path);
    std::optional<Node> whole;
    std::string text;
    try {
      text = evaluate(n.value, path, &whole);
    } catch (const Failure& f) {
      stack_.pop_back();
      state_[&n] = State::Failed;
      failure_[&n] = f.message;
      throw;
    }
    stack_.pop_back();
    state_[&n] = State::Done;
    std::string origin = n.origin;
    if (whole) {
      n = *whole;
    } else {
      n = Node::scalar(text, origin, n.quoted);
    }
    n.origin = origin;
  }

  // Evaluates a template. When it is exactly one interpolation and `whole` is
  // given, the referenced node itself (with its type) lands there.
  std::string evaluate(const std::string& s, const std::string& path, std::optional<Node>* whole) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (s[i] == '\\' && s.compare(i + 1, 2, "${") == 0) {
        out += "${";
        i += 3;
        continue;
      }
      if (s.compare(i, 2, "${") != 0) {
        out += s[i++];
        continue;
      }
      size_t close = matching_brace(s, i);
      std::string expr = s.substr(i + 2, close - i - 2);
      bool is_whole = whole && i == 0 && close == s.size() - 1;
      Node value = expression(expr, path);
      if (is_whole) {
        *whole = value;
        return {};
      }
      if (!value.is_scalar() && !value.is_null())
        throw Failure{fmt::format("'${{{}}}' is a {} and cannot be part of a string", expr,
                                  value.is_map() ? "mapping" : "list")};
      out += value.is_null() ? "null" : value.value;
      // Values that refer to others several times grow geometrically: a few
      // hundred bytes of YAML could expand to gigabytes. Values are settings,
      // not documents, so stop early with a short message.
      if (out.size() > kMaxInterpolatedBytes)
        throw Failure{fmt::format("expands to more than {} characters (each interpolation copies its value); "
                                  "interpolation composes values, it does not generate text",
                                  kMaxInterpolatedBytes)};
      i = close + 1;
    }
    return out;
  }

  static size_t matching_brace(const std::string& s, size_t open) {
    int depth = 0;
    for (size_t j = open + 1; j < s.size(); ++j) {
      if (s[j] == '{') ++depth;
      if (s[j] == '}' && --depth == 0) return j;
    }
    throw Failure{fmt::format("unterminated interpolation '{}'", s.substr(open))};
  }

  Node expression(const std::string& expr, const std::string& path) {
    size_t colon = expr.find(':');
    size_t name_end = expr.find_first_not_of("abcdefghijklmnopqrstuvwxyz_.");
    if (colon != std::string::npos && name_end == colon && colon > 0)
      return call(expr.substr(0, colon), arguments(expr.substr(colon + 1), path), expr);
    return reference(expr, path);
  }

  std::vector<std::string> arguments(const std::string& args, const std::string& path) {
    std::vector<std::string> out;
    std::string cur;
    int depth = 0;
    auto flush = [&] {
      size_t b = cur.find_first_not_of(" \t");
      std::string t = b == std::string::npos ? "" : cur.substr(b, cur.find_last_not_of(" \t") - b + 1);
      if (t.size() >= 2 && (t.front() == '\'' || t.front() == '"') && t.back() == t.front()) t = t.substr(1, t.size() - 2);
      out.push_back(evaluate(t, path, nullptr));
      cur.clear();
    };
    for (char c : args) {
      if (c == '{') ++depth;
      if (c == '}') --depth;
      if (c == ',' && depth == 0) {
        flush();
        continue;
      }
      cur += c;
    }
    flush();
    return out;
  }

  Node call(const std::string& name, const std::vector<std::string>& args, const std::string& expr) {
    if (name == "env" || name == "oc.env") {
      if (args.empty() || args.size() > 2 || args[0].empty())
        throw Failure{fmt::format("'${{{}}}': write ${{env:VAR}} or ${{env:VAR,default}}", expr)};
      if (const char* v = std::getenv(args[0].c_str())) return Node::scalar(v);
      if (args.size() == 2) return is_null_text(args[1]) && args[1] != "" ? Node::null() : Node::scalar(args[1]);
      throw Failure{fmt::format("'${{{}}}': environment variable {} is not set and no default is given", expr, args[0])};
    }
    if (name == "div") {
      if (args.size() != 2) throw Failure{fmt::format("'${{{}}}': div takes two integers", expr)};
      auto a = parse_int(args[0]);
      auto b = parse_int(args[1]);
      if (!a || !b) throw Failure{fmt::format("'${{{}}}': div takes two integers, got '{}' and '{}'", expr, args[0], args[1])};
      if (*b == -1 && *a == std::numeric_limits<int64_t>::min())  // the one quotient int64 cannot hold
        throw Failure{fmt::format("'${{{}}}': {} / {} overflows a 64-bit integer", expr, *a, *b)};
      if (*b == 0 || *a % *b != 0)
        throw Failure{fmt::format("'${{{}}}': {} is not divisible by {}", expr, *a, *b)};
      return Node::scalar(std::to_string(*a / *b));
    }
    throw Failure{fmt::format("'${{{}}}': unknown resolver '{}' (known: env, oc.env, div)", expr, name)};
  }

  Node reference(const std::string& expr, const std::string& path) {
    std::string target = expr;
    if (!target.empty() && target.front() == '.') {
      size_t dots = target.find_first_not_of('.');
      if (dots == std::string::npos) throw Failure{fmt::format("'${{{}}}' names no key", expr)};
      // The key's own map is its path minus the last segment; each extra dot goes one map up.
      std::string base = path.substr(0, path.find('['));
      auto parts = split_path(base);
      if (parts.size() < dots) throw Failure{fmt::format("'${{{}}}' goes above the top of the config", expr)};
      parts.resize(parts.size() - dots);
      std::string prefix;
      for (const auto& p : parts) prefix = join_path(prefix, p);
      target = join_path(prefix, target.substr(dots));
    }
    if (target.empty() || target.find_first_of(" ${}") != std::string::npos)
      throw Failure{fmt::format("'${{{}}}' is not a key path", expr)};
    Node* n = root_.at_path(target);
    if (!n) {
      std::string chain = stack_.size() > 1 ? " (via " + chain_text() + ")" : "";
      throw Failure{fmt::format("'${{{}}}' refers to '{}', which does not exist{}{}", expr, target,
                                suggest_key(target), chain)};
    }
    if (n->is_missing())
      throw Failure{fmt::format("'${{{}}}' refers to '{}', which is mandatory (???" ") and not set", expr, target)};
    resolve_tree(*n, target);
    return *n;
  }

  void resolve_tree(Node& n, const std::string& path) {
    if (n.is_map()) {
      for (auto& [k, v] : n.entries) resolve_tree(v, join_path(path, k));
    } else if (n.is_sequence()) {
      for (size_t i = 0; i < n.items.size(); ++i) resolve_tree(n.items[i], fmt::format("{}[{}]", path, i));
    } else {
      resolve(n, path);
    }
  }

  std::string chain_text() const {
    std::string s;
    for (size_t i = 0; i < stack_.size(); ++i) s += (i ? " -> " : "") + stack_[i];
    return s;
  }

  Node& root_;
  std::vector<Diagnostic>& problems_;
  std::map<const Node*, State> state_;
  std::map<const Node*, std::string> failure_;
  std::set<const Node*> reported_;
  std::vector<std::string> stack_;
};

}  // namespace

void interpolate(Node& root, std::vector<Diagnostic>& problems) {
  Resolver(root, problems).run();
}

}  // namespace attnlab::config
