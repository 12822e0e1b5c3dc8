// json.cc: see json.h.
#include "json.h"

#include <cstdlib>

namespace cgslab::stress::json {

const Value* Value::get(const std::string& key) const {
  if (kind != kObject) return nullptr;
  for (size_t i = 0; i < keys.size(); ++i)
    if (keys[i] == key) return &values[i];
  return nullptr;
}

double Value::num(const std::string& key, double dflt) const {
  const Value* v = get(key);
  return v && v->kind == kNumber ? v->n : dflt;
}

std::string Value::str(const std::string& key, const std::string& dflt) const {
  const Value* v = get(key);
  return v && v->kind == kString ? v->s : dflt;
}

namespace {

struct Parser {
  const std::string& t;
  size_t i = 0;
  std::string err;

  void ws() {
    while (i < t.size() && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) ++i;
  }
  bool fail(const std::string& what) {
    if (err.empty()) err = what + " at byte " + std::to_string(i);
    return false;
  }
  bool lit(const char* w) {
    size_t n = std::char_traits<char>::length(w);
    if (t.compare(i, n, w) != 0) return fail(std::string("expected ") + w);
    i += n;
    return true;
  }
  bool string(std::string* out) {
    if (i >= t.size() || t[i] != '"') return fail("expected a string");
    ++i;
    while (i < t.size() && t[i] != '"') {
      char c = t[i++];
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (i >= t.size()) break;
      char e = t[i++];
      switch (e) {
        case 'n': *out += '\n'; break;
        case 't': *out += '\t'; break;
        case 'r': *out += '\r'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'u': {
          if (i + 4 > t.size()) return fail("short \\u escape");
          unsigned cp = unsigned(std::strtoul(t.substr(i, 4).c_str(), nullptr, 16));
          i += 4;
          if (cp < 0x80) {
            *out += char(cp);
          } else if (cp < 0x800) {
            *out += char(0xc0 | (cp >> 6));
            *out += char(0x80 | (cp & 0x3f));
          } else {
            *out += char(0xe0 | (cp >> 12));
            *out += char(0x80 | ((cp >> 6) & 0x3f));
            *out += char(0x80 | (cp & 0x3f));
          }
          break;
        }
        default: *out += e;
      }
    }
    if (i >= t.size()) return fail("unterminated string");
    ++i;
    return true;
  }
  bool value(Value* v, int depth) {
    if (depth > 64) return fail("nesting too deep");
    ws();
    if (i >= t.size()) return fail("unexpected end");
    char c = t[i];
    if (c == '{') {
      v->kind = Value::kObject;
      ++i;
      ws();
      if (i < t.size() && t[i] == '}') return ++i, true;
      for (;;) {
        ws();
        std::string k;
        if (!string(&k)) return false;
        ws();
        if (i >= t.size() || t[i] != ':') return fail("expected ':'");
        ++i;
        Value m;
        if (!value(&m, depth + 1)) return false;
        v->keys.push_back(std::move(k));
        v->values.push_back(std::move(m));
        ws();
        if (i < t.size() && t[i] == ',') {
          ++i;
          continue;
        }
        if (i < t.size() && t[i] == '}') return ++i, true;
        return fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v->kind = Value::kArray;
      ++i;
      ws();
      if (i < t.size() && t[i] == ']') return ++i, true;
      for (;;) {
        Value m;
        if (!value(&m, depth + 1)) return false;
        v->items.push_back(std::move(m));
        ws();
        if (i < t.size() && t[i] == ',') {
          ++i;
          continue;
        }
        if (i < t.size() && t[i] == ']') return ++i, true;
        return fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v->kind = Value::kString;
      return string(&v->s);
    }
    if (c == 't') return v->kind = Value::kBool, v->b = true, lit("true");
    if (c == 'f') return v->kind = Value::kBool, v->b = false, lit("false");
    if (c == 'n') return v->kind = Value::kNull, lit("null");
    const char* start = t.c_str() + i;
    char* end = nullptr;
    double d = std::strtod(start, &end);
    if (end == start) return fail("unexpected character");
    v->kind = Value::kNumber;
    v->n = d;
    i += size_t(end - start);
    return true;
  }
};

}  // namespace

bool parse(const std::string& text, Value* out, std::string* error) {
  Parser p{text, 0, {}};
  bool ok = p.value(out, 0);
  if (ok) {
    p.ws();
    if (p.i != text.size()) ok = p.fail("trailing characters");
  }
  if (!ok && error) *error = p.err;
  return ok;
}

}  // namespace cgslab::stress::json
