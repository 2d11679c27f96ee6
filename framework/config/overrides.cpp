// A recursive-descent parser for command-line overrides. Errors carry the
// override's number and text with a caret under the offending column.
#include "config/overrides.h"

#include <fmt/format.h>

#include <cmath>

#include "config/scalars.h"
#include "core/error.h"

namespace attnlab::config {

namespace {

constexpr size_t kMaxRange = 10000;

struct ParseFailure {
  size_t column;
  std::string message;
};

class Parser {
 public:
  Parser(const std::string& text, std::string origin) : s_(text), origin_(std::move(origin)) {}

  Override parse() {
    Override o;
    if (eat('~')) {
      o.op = OverrideOp::Delete;
    } else if (s_.compare(0, 2, "++") == 0) {
      pos_ = 2;
      o.op = OverrideOp::Force;
    } else if (eat('+')) {
      o.op = OverrideOp::Add;
    }
    o.key = key();
    if (o.key == "zip" && o.op == OverrideOp::Set && peek() == '(') {
      o.key.clear();
      o.zip = zip();
      end();
      return o;
    }
    if (o.op == OverrideOp::Delete && at_end()) return o;
    if (!eat('=')) fail("expected '=' after the key" + std::string(o.op == OverrideOp::Delete ? " (or nothing, to delete)" : ""));
    if (std::optional<std::string> fn = function_name()) {
      if (o.op == OverrideOp::Delete) fail("a deletion cannot sweep");
      if (*fn == "glob") o.glob = glob();
      else o.sweep = function_values(*fn);
      end();
      return o;
    }
    std::vector<Node> values{element()};
    while (eat(',')) values.push_back(element());
    end();
    if (values.size() > 1) {
      if (o.op == OverrideOp::Delete) fail("a deletion cannot sweep", 0);
      o.sweep = std::move(values);
    } else {
      o.value = std::move(values.front());
    }
    return o;
  }

 private:
  [[noreturn]] void fail(const std::string& message, std::optional<size_t> column = std::nullopt) const {
    throw ParseFailure{column.value_or(pos_), message};
  }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void skip_space() {
    while (peek() == ' ' || peek() == '\t') ++pos_;
  }
  void expect(char c, const std::string& what) {
    skip_space();
    if (!eat(c)) fail(fmt::format("expected '{}' {}", c, what));
  }
  void end() {
    skip_space();
    if (!at_end()) fail(fmt::format("unexpected '{}'; quote values that contain , [ ] ( ) {{ }} = or quotes", peek()));
  }

  static bool key_char(char c, bool first) {
    bool alpha = std::isalpha(static_cast<unsigned char>(c)) || c == '_';
    if (first) return alpha || c == '/';
    return alpha || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '/';
  }

  std::string key() {
    size_t start = pos_;
    std::string out;
    while (true) {
      size_t seg = pos_;
      if (at_end() || !key_char(peek(), true)) fail(pos_ == start ? "expected a key (letters, digits, '_', '.')" : "expected a key segment after '.'");
      while (!at_end() && key_char(peek(), pos_ == seg)) ++pos_;
      if (!eat('.')) break;
    }
    out = s_.substr(start, pos_ - start);
    return out;
  }

  std::optional<std::string> function_name() {
    size_t p = pos_;
    while (p < s_.size() && std::isalpha(static_cast<unsigned char>(s_[p]))) ++p;
    if (p == pos_ || p >= s_.size() || s_[p] != '(') return std::nullopt;
    std::string name = s_.substr(pos_, p - pos_);
    if (name != "choice" && name != "range" && name != "glob")
      fail(fmt::format("unknown sweep function '{}': expected choice(...), range(...) or glob(...); quote the value if it is a string", name));
    pos_ = p + 1;
    return name;
  }

  std::vector<Node> function_values(const std::string& fn) {
    size_t open = pos_;
    std::vector<Node> args;
    skip_space();
    if (!eat(')')) {
      args.push_back(element());
      while (eat(',')) args.push_back(element());
      expect(')', "to close " + fn + "(");
    }
    if (args.empty()) fail(fn + "() needs at least one value", open);
    if (fn == "choice") return args;
    return range(args, open);
  }

  std::vector<Node> range(const std::vector<Node>& args, size_t column) {
    if (args.size() < 2 || args.size() > 3) fail("range takes (start, stop) or (start, stop, step)", column);
    bool ints = true;
    std::vector<double> v;
    for (const auto& a : args) {
      if (!a.is_scalar() || a.quoted || !parse_float(a.value)) fail("range arguments must be numbers", column);
      ints = ints && parse_int(a.value).has_value();
      v.push_back(*parse_float(a.value));
    }
    double step = args.size() == 3 ? v[2] : 1.0;
    if (step == 0 || !std::isfinite(step) || !std::isfinite(v[0]) || !std::isfinite(v[1]))
      fail("range needs finite bounds and a non-zero step", column);
    double count = std::ceil((v[1] - v[0]) / step);
    if (count <= 0) fail("range is empty", column);
    if (count > static_cast<double>(kMaxRange)) fail(fmt::format("range has more than {} values", kMaxRange), column);
    std::vector<Node> out;
    for (size_t i = 0; i < static_cast<size_t>(count); ++i) {
      if (ints) {
        int64_t x = *parse_int(args[0].value) + static_cast<int64_t>(i) * static_cast<int64_t>(step);
        out.push_back(Node::scalar(std::to_string(x), origin_));
      } else {
        out.push_back(Node::scalar(fmt::format("{}", v[0] + static_cast<double>(i) * step), origin_));
      }
    }
    return out;
  }

  std::vector<std::string> glob() {
    std::vector<std::string> patterns;
    do {
      skip_space();
      size_t start = pos_;
      while (!at_end() && peek() != ',' && peek() != ')') ++pos_;
      std::string p = s_.substr(start, pos_ - start);
      while (!p.empty() && p.back() == ' ') p.pop_back();
      if (p.empty()) fail("expected a name pattern such as * or m*");
      patterns.push_back(p);
    } while (eat(','));
    expect(')', "to close glob(");
    return patterns;
  }

  std::vector<ZipDim> zip() {
    size_t open = pos_;
    ++pos_;  // '('
    std::vector<ZipDim> dims;
    do {
      skip_space();
      ZipDim d;
      if (s_.compare(pos_, 2, "++") == 0) {
        pos_ += 2;
        d.op = OverrideOp::Force;
      } else if (eat('+')) {
        d.op = OverrideOp::Add;
      }
      d.key = key();
      if (!eat('=')) fail("expected '=' after the key inside zip(...)");
      if (peek() != '[') fail("zip(...) pairs lists: write key=[v1,v2,...]");
      Node list = element();
      d.values = list.items;
      if (d.values.empty()) fail("zip(...) lists must not be empty");
      if (!dims.empty() && d.values.size() != dims.front().values.size())
        fail(fmt::format("zip(...) lists must have the same length: '{}' has {}, '{}' has {}", d.key,
                         d.values.size(), dims.front().key, dims.front().values.size()));
      dims.push_back(std::move(d));
    } while (eat(','));
    expect(')', "to close zip(");
    if (dims.empty()) fail("zip(...) needs at least one key=[...]", open);
    return dims;
  }

  Node element() {
    skip_space();
    size_t start = pos_;
    Node n;
    if (peek() == '\'' || peek() == '"') {
      n = quoted();
    } else if (eat('[')) {
      n = Node::sequence(origin_);
      skip_space();
      if (!eat(']')) {
        n.items.push_back(element());
        while (eat(',')) n.items.push_back(element());
        skip_space();
        if (!eat(']')) fail("expected ',' or ']' to close the list opened here", start);
      }
    } else if (eat('{')) {
      n = Node::map(origin_);
      skip_space();
      if (!eat('}')) {
        do {
          skip_space();
          size_t kstart = pos_;
          std::string k = primitive_text(true);
          if (k.empty()) fail("expected a key in {...}", kstart);
          if (n.find(k)) fail(fmt::format("duplicate key '{}' in {{...}}", k), kstart);
          expect(':', "after the key in {...}");
          n.entries.push_back({k, element()});
        } while (eat(','));
        skip_space();
        if (!eat('}')) fail("expected ',' or '}' to close the map opened here", start);
      }
    } else {
      std::string text = primitive_text(false);
      if (text.empty()) {
        if (at_end() && start == value_start()) return Node::scalar("", origin_, true);  // "a=" is ""
        fail(at_end() ? "expected a value" : fmt::format("expected a value before '{}'", peek()));
      }
      n = is_null_text(text) ? Node::null(origin_) : Node::scalar(text, origin_);
    }
    skip_space();
    return n;
  }

  size_t value_start() const { return s_.find('=') == std::string::npos ? 0 : s_.find('=') + 1; }

  Node quoted() {
    char q = s_[pos_];
    size_t open = pos_++;
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated quoted string (opened here)", open);
      char c = s_[pos_++];
      if (c == q) break;
      if (c == '\\' && !at_end() && (peek() == q || peek() == '\\')) c = s_[pos_++];
      out += c;
    }
    return Node::scalar(out, origin_, true);
  }

  // Unquoted text up to a structural character; ${...} is one unit.
  std::string primitive_text(bool in_map_key) {
    size_t start = pos_;
    while (!at_end()) {
      char c = peek();
      if (c == '$' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '{') {
        size_t open = pos_++;
        int depth = 0;
        do {
          if (at_end()) fail("unterminated interpolation '${'", open);
          if (peek() == '{') ++depth;
          if (peek() == '}') --depth;
          ++pos_;
        } while (depth > 0);
        continue;
      }
      if (c == ',' || c == '[' || c == ']' || c == '{' || c == '}' || c == '(' || c == ')' || c == '\'' ||
          c == '"' || c == '=' || (in_map_key && c == ':'))
        break;
      ++pos_;
    }
    std::string t = s_.substr(start, pos_ - start);
    size_t b = t.find_first_not_of(" \t");
    if (b == std::string::npos) return {};
    return t.substr(b, t.find_last_not_of(" \t") - b + 1);
  }

  const std::string& s_;
  std::string origin_;
  size_t pos_ = 0;
};

std::string caret(const std::string& text, size_t column) {
  return fmt::format("\n    {}\n    {}^", text, std::string(std::min(column, text.size()), ' '));
}

std::string op_prefix(OverrideOp op) {
  switch (op) {
    case OverrideOp::Add: return "+";
    case OverrideOp::Force: return "++";
    case OverrideOp::Delete: return "~";
    case OverrideOp::Set: return "";
  }
  return "";
}

}  // namespace

std::string override_origin(int index, const std::string& text) {
  return fmt::format("override #{} '{}'", index, text);
}

Override parse_override(const std::string& text, int index) {
  std::string origin = override_origin(index, text);
  Parser p(text, origin);
  try {
    Override o = p.parse();
    o.index = index;
    o.text = text;
    o.origin = origin;
    return o;
  } catch (const ParseFailure& f) {
    std::string key;
    size_t eq = text.find('=');
    if (eq != std::string::npos) key = text.substr(text.find_first_not_of("+~"), eq - text.find_first_not_of("+~"));
    if (key.find_first_of("([{'\" ") != std::string::npos) key.clear();
    throw UserError(std::vector<Diagnostic>{{key, origin, f.message + caret(text, f.column)}});
  }
}

std::vector<Override> parse_overrides(const std::vector<std::string>& texts) {
  std::vector<Override> out;
  std::vector<Diagnostic> problems;
  for (size_t i = 0; i < texts.size(); ++i) {
    try {
      out.push_back(parse_override(texts[i], static_cast<int>(i) + 1));
    } catch (const UserError& e) {
      problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
    }
  }
  if (!problems.empty()) throw UserError(problems);
  return out;
}

std::string format_override(OverrideOp op, const std::string& key, const Node& value) {
  return op_prefix(op) + key + "=" + to_flow(value);
}

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative matcher with one backtrack point for the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace attnlab::config
