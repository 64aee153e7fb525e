// The independent NATS reader of the tests: tests/interop/nats_read.mjs, the npm NATS client
// (@nats-io/jetstream, pinned in tests/interop/package-lock.json) run with node. For tests of the
// `cluster` label, which get EVROUTE_NODE and EVROUTE_INTEROP_DIR from tests/CMakeLists.txt.
// Without node or the packages the test fails, naming scripts/install-deps --test: never a skip.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace evtest {

inline bool nats_reader_ready() {
  const std::string node = EVROUTE_NODE;
  if (node.empty() || node.ends_with("NOTFOUND")) {
    ADD_FAILURE() << "node was not found when configuring: run scripts/install-deps --test";
    return false;
  }
  for (const char* pkg : {"@nats-io/transport-node", "@nats-io/jetstream"}) {
    if (!std::filesystem::exists(std::filesystem::path(EVROUTE_INTEROP_DIR) / "node_modules" / pkg /
                                 "package.json")) {
      ADD_FAILURE() << pkg << " is not installed: run scripts/install-deps --test";
      return false;
    }
  }
  return true;
}

// The shell command running nats_read.mjs with `args` (bounded: 60 s).
inline std::string nats_reader_command(const std::string& args) {
  return std::string("timeout 60 '") + EVROUTE_NODE + "' '" + EVROUTE_INTEROP_DIR +
         "/nats_read.mjs' " + args;
}

// Its output lines as JSON (a line that is not JSON fails the test).
inline std::vector<nlohmann::json> parse_reader_lines(const std::vector<std::string>& lines) {
  std::vector<nlohmann::json> out;
  for (const auto& l : lines) {
    nlohmann::json j = nlohmann::json::parse(l, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << l;
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

}  // namespace evtest
