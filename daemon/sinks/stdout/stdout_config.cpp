#include "sinks/stdout/stdout_config.h"

#include "sinks/stdout/stdout_sink.h"

namespace evrouted {

namespace {

class StdoutSpec final : public SinkSpec {
 public:
  Leaf build() const override {
    auto sink = std::make_shared<StdoutSink>();
    return {.sink = sink, .batch = sink.get()};
  }
  std::string describe() const override { return "stdout"; }
  DeliveryConfig delivery() const override {
    DeliveryConfig d;
    d.write_batches = true;
    return d;
  }
  std::string preview(const evroute::Event& event,
                      std::chrono::system_clock::time_point) const override {
    return "write to stdout:\n" + std::string(event.payload()) + "\n";
  }
};

}  // namespace

std::unique_ptr<SinkSpec> parse_stdout_sink(ConfigReader&) {
  return std::make_unique<StdoutSpec>();
}

const SinkType& stdout_sink_type() {
  static constexpr SinkType kType{.name = "stdout",
                                  .summary = "one line per event on standard output",
                                  .parse = &parse_stdout_sink,
                                  .capabilities = {.batching = true}};
  return kType;
}

}  // namespace evrouted
