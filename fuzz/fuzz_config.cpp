// fuzz_config: load_config_text() (daemon/config.h) on arbitrary YAML.
//
// Properties: it never crashes or throws; a Config comes back exactly when there are no errors;
// every error is about this text, at a real position: file "fuzz.yaml", line >= 1 and at most one
// past the text's last line, column >= 1, a non-empty message, and to_string() reads
// "fuzz.yaml:LINE:COL: message".
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using evroute_fuzz::require;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const evrouted::LoadResult result = evrouted::load_config_text(text, "fuzz.yaml");

  require(result.config.has_value() == result.errors.empty(),
          "a config must come back exactly when there are no errors");
  const auto lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const evrouted::ConfigError& error : result.errors) {
    const std::string shown = error.to_string();
    require(error.file == "fuzz.yaml", "error names another file", shown);
    require(!error.message.empty(), "error without a message", shown);
    require(error.line >= 1 && error.line <= lines, "error line outside the text", shown);
    require(error.column >= 1, "error column < 1", shown);
    const std::string prefix =
        "fuzz.yaml:" + std::to_string(error.line) + ":" + std::to_string(error.column) + ": ";
    require(shown.starts_with(prefix) && shown.size() > prefix.size(),
            "error is not FILE:LINE:COL: message", shown);
  }
  return 0;
}
