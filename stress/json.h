// json.h: a small JSON reader for the stress reports (stress_plot and nothing else).
//
// The machines this runs on have no JSON or plotting library we may rely on (no pip), and the
// reports are written by run.cc, so a strict recursive-descent reader of standard JSON is enough:
// numbers are doubles, objects keep their key order. Errors name the byte offset.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cgslab::stress::json {

struct Value {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Value> items;                              // array
  std::vector<std::string> keys;                         // object, in order
  std::vector<Value> values;                             // object values, same order

  const Value* get(const std::string& key) const;        // object member or nullptr
  double num(const std::string& key, double dflt = 0) const;
  std::string str(const std::string& key, const std::string& dflt = "") const;
};

// false + error on malformed input.
bool parse(const std::string& text, Value* out, std::string* error);

}  // namespace cgslab::stress::json
