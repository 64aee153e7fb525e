// Events for tests: one place for what every test file used to define as its own ev().
//   ev("a")                 id "a", payload "{}"
//   ev(7)                   id "e7", payload "{}"
//   json_ev("a")            id "a", payload {"id":"a"}
//   json_ev("a", "t")       id "a", payload {"id":"a","type":"t"}
#pragma once

#include <string>
#include <string_view>

#include "evroute/event.h"

namespace evtest {

inline evroute::Event ev(std::string_view id, std::string_view payload = "{}") {
  return evroute::Event::make(id, payload);
}

inline evroute::Event ev(int i) { return ev("e" + std::to_string(i)); }

// The payload names the id, and a "type" member when `type` is not empty (the event then has no
// attributes: pass them to Event::make where a test filters on them).
inline evroute::Event json_ev(std::string_view id, std::string_view type = {}) {
  std::string payload = "{\"id\":\"" + std::string(id) + "\"";
  if (!type.empty()) payload += ",\"type\":\"" + std::string(type) + "\"";
  return evroute::Event::make(id, payload + "}");
}

}  // namespace evtest
