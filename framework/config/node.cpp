// The config tree: construction, dotted-path access, merging and rendering
// as YAML (block style for people, flow style for override values).
#include "config/node.h"

#include <yaml-cpp/yaml.h>

#include <sstream>

#include "config/scalars.h"

namespace attnlab::config {

Node Node::null(std::string origin) {
  Node n;
  n.origin = std::move(origin);
  return n;
}
Node Node::scalar(std::string value, std::string origin, bool quoted) {
  Node n;
  n.kind = Kind::Scalar;
  n.value = std::move(value);
  n.quoted = quoted;
  n.origin = std::move(origin);
  return n;
}
Node Node::map(std::string origin) {
  Node n;
  n.kind = Kind::Map;
  n.origin = std::move(origin);
  return n;
}
Node Node::sequence(std::string origin) {
  Node n;
  n.kind = Kind::Sequence;
  n.origin = std::move(origin);
  return n;
}

const Node* Node::find(const std::string& key) const {
  if (kind != Kind::Map) return nullptr;
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}
Node* Node::find(const std::string& key) {
  return const_cast<Node*>(static_cast<const Node*>(this)->find(key));
}
Node& Node::child(const std::string& key) {
  if (kind != Kind::Map) {
    kind = Kind::Map;
    value.clear();
    items.clear();
  }
  if (Node* n = find(key)) return *n;
  entries.push_back({key, Node::null(origin)});
  return entries.back().second;
}
bool Node::erase(const std::string& key) {
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->first == key) {
      entries.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}
std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

const Node* Node::at_path(const std::string& path) const {
  if (path.empty()) return this;
  const Node* n = this;
  for (const auto& part : split_path(path)) {
    n = n->find(part);
    if (!n) return nullptr;
  }
  return n;
}
Node* Node::at_path(const std::string& path) {
  return const_cast<Node*>(static_cast<const Node*>(this)->at_path(path));
}
Node& Node::set_path(const std::string& path, Node v) {
  Node* n = this;
  for (const auto& part : split_path(path)) {
    std::string origin = v.origin;
    bool fresh = !n->find(part);
    n = &n->child(part);
    if (fresh) n->origin = origin;
  }
  *n = std::move(v);
  return *n;
}
bool Node::erase_path(const std::string& path) {
  auto parts = split_path(path);
  std::string last = parts.back();
  parts.pop_back();
  Node* n = this;
  for (const auto& part : parts) {
    n = n->find(part);
    if (!n) return false;
  }
  return n->erase(last);
}

size_t Node::size() const {
  size_t s = 1;
  for (const auto& i : items) s += i.size();
  for (const auto& [k, v] : entries) s += v.size();
  return s;
}

bool Node::same_value(const Node& o) const {
  if (kind != o.kind) return false;
  switch (kind) {
    case Kind::Null: return true;
    case Kind::Scalar: return value == o.value && quoted == o.quoted;
    case Kind::Sequence:
      if (items.size() != o.items.size()) return false;
      for (size_t i = 0; i < items.size(); ++i)
        if (!items[i].same_value(o.items[i])) return false;
      return true;
    case Kind::Map:
      if (entries.size() != o.entries.size()) return false;
      for (const auto& [k, v] : entries) {
        const Node* w = o.find(k);
        if (!w || !v.same_value(*w)) return false;
      }
      return true;
  }
  return false;
}

void merge_into(Node& base, const Node& overlay) {
  if (base.is_map() && overlay.is_map()) {
    for (const auto& [k, v] : overlay.entries) {
      if (Node* existing = base.find(k)) {
        merge_into(*existing, v);
      } else {
        base.entries.push_back({k, v});
      }
    }
    return;
  }
  base = overlay;
}

void for_each_leaf(const Node& node, const std::string& prefix,
                   const std::function<void(const std::string&, const Node&)>& fn) {
  if (node.is_map()) {
    for (const auto& [k, v] : node.entries) for_each_leaf(v, join_path(prefix, k), fn);
    return;
  }
  fn(prefix, node);
}

namespace {
// A quoted scalar must stay quoted when its text reads as another type.
bool needs_quotes(const Node& n) {
  if (n.value.empty()) return true;
  return n.quoted && plain_reads_as_non_string(n.value);
}

void emit(YAML::Emitter& out, const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null: out << YAML::Null; break;
    case Node::Kind::Scalar:
      if (needs_quotes(n)) out << YAML::DoubleQuoted;
      out << n.value;
      break;
    case Node::Kind::Sequence:
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& i : n.items) emit(out, i);
      out << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      out << YAML::BeginMap;
      for (const auto& [k, v] : n.entries) {
        out << YAML::Key << k << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}

bool flow_safe(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    // Control bytes and spaces would be trimmed or misread unquoted.
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
    if (c == ',' || c == '[' || c == ']' || c == '(' || c == ')' || c == '{' || c == '}' ||
        c == '\'' || c == '"' || c == '=' || c == ' ' || c == '\\' || c == ':')
      return false;
  }
  return true;
}
}  // namespace

std::string to_yaml(const Node& node) {
  YAML::Emitter out;
  out.SetNullFormat(YAML::LowerNull);
  emit(out, node);
  std::string s = out.c_str();
  if (!s.empty() && s.back() != '\n') s += '\n';
  return s;
}

std::string to_flow(const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null: return "null";
    case Node::Kind::Scalar: {
      if (!n.quoted && flow_safe(n.value)) return n.value;
      if (n.quoted && flow_safe(n.value) && !plain_reads_as_non_string(n.value)) return n.value;
      std::string q = "'";
      for (char c : n.value) {
        if (c == '\'' || c == '\\') q += '\\';
        q += c;
      }
      return q + "'";
    }
    case Node::Kind::Sequence: {
      std::string s = "[";
      for (size_t i = 0; i < n.items.size(); ++i) {
        if (i) s += ',';
        s += to_flow(n.items[i]);
      }
      return s + "]";
    }
    case Node::Kind::Map: {
      std::string s = "{";
      for (size_t i = 0; i < n.entries.size(); ++i) {
        if (i) s += ',';
        s += n.entries[i].first;
        s += ':';
        s += to_flow(n.entries[i].second);
      }
      return s + "}";
    }
  }
  return {};
}

}  // namespace attnlab::config
