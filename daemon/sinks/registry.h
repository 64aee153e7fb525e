// The sink registry: every sink type evrouted knows, looked up by its YAML `type:` name.
//
// A sink type provides a parser for its type-specific keys (path, url, headers...) that returns a
// SinkSpec: the validated settings, able to build the leaf sink that does the I/O. The generic keys
// every sink has (type, filter, queue, retry) are read by config.cpp, and each sink's Pipeline
// (pipeline.h) wraps its leaf in Filter -> queue -> Retrying -> [RateLimited] -> leaf.
//
// A type declares what it can do in its SinkType entry (Capabilities) and hands the matching
// interfaces of the leaf it builds over in a Leaf: the pipeline never guesses them with a cast.
//
// Adding a sink type TYPE (stdout, file and http are the models):
//   1. A folder daemon/sinks/TYPE/ holding
//        TYPE_config.h/.cpp  its settings and parse_TYPE_sink() (its keys -> its SinkSpec), and
//                            `const SinkType& TYPE_sink_type()`, its entry: name, summary, parse,
//                            capabilities, full_jitter_by_default;
//        the sink itself (TYPE_sink.h/.cpp), and whatever else it needs;
//        CMakeLists.txt      target_sources(evrouted_core PRIVATE ...), and the
//                            target_link_libraries of a dependency of its own
//                            (daemon/CMakeLists.txt adds every sinks/*/CMakeLists.txt by itself).
//   2. One line in registry.cpp's table: EVROUTED_SINK_TYPE(TYPE). That table is the only list of
//      types; its order is the order they are listed in (sink_type_names(), sink_type_list()).
//   3. If it brings a dependency: its find_package() in the top-level CMakeLists.txt.
// Its tests go in tests/daemon/sinks/TYPE/*_test.cpp, built and labelled `daemon` without a CMake
// edit (tests/CMakeLists.txt); each file name must be unique among all tests (it names the
// executable). Code several types share (fd_writer, delivery) stays in daemon/sinks/ itself.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config_reader.h"
#include "evroute/batch_sink.h"
#include "evroute/sink.h"
#include "sinks/delivery.h"

namespace evrouted {

class Reopenable;
class Disableable;

// A built leaf sink, and the capability interfaces it implements (the same object; null where it
// has not got one). A type sets exactly those its SinkType::Capabilities declare.
struct Leaf {
  std::shared_ptr<evroute::Sink> sink;
  Reopenable* reopenable = nullptr;
  Disableable* disableable = nullptr;
  evroute::BatchSink* batch = nullptr;  // takes write_batch(): the queue may hand it batches
};

class SinkSpec {
 public:
  virtual ~SinkSpec() = default;
  // Builds the leaf sink. Throws std::runtime_error with a message a user can act on when it cannot
  // start (e.g. "cannot open ./data/events.ndjson: Permission denied").
  virtual Leaf build() const = 0;
  // One line for the start-up log, e.g. "file ./data/events.ndjson".
  virtual std::string describe() const = 0;
  // For `evrouted --dry-run`: exactly what the sink would send for `event` at time `now` (the HTTP
  // request, the file and line...), as text ending in a newline, without any I/O. The default
  // says that the sink type has no preview.
  virtual std::string preview(const evroute::Event& event,
                              std::chrono::system_clock::time_point now) const;
  // Rate limit, concurrency and batching the topology applies in front of the leaf (see
  // delivery.h). A sink type that reports concurrency > 1 must build a leaf that takes concurrent
  // writes usefully; one that reports batching must build an evroute::BatchSink.
  virtual DeliveryConfig delivery() const { return {}; }
};

// Implemented by leaf sinks that write to a file: reopen() closes and reopens it (SIGUSR1, SIGHUP),
// so that logrotate can move the old file away.
class Reopenable {
 public:
  virtual ~Reopenable() = default;
  virtual evroute::Status reopen() = 0;
};

// Implemented by leaf sinks that their destination can switch off (the http sink, on 410 Gone).
// While disabled, write() keeps the event it holds and waits — it neither fails nor drops it, so
// the sink's queue fills behind it and its when_full policy applies — until enable() (SIGHUP, or
// POST /v1/sinks/NAME/enable) or close() (which returns kClosed: the queue counts the event as
// undelivered). Thread-safety: every member from any thread.
class Disableable {
 public:
  struct State {
    bool disabled = false;
    std::string reason;                           // e.g. "POST https://x/hooks: HTTP 410 Gone"
    std::chrono::system_clock::time_point since;  // when it was disabled
  };
  virtual ~Disableable() = default;
  virtual State state() const = 0;
  // Lets a held write try again at once. Returns whether the sink was disabled.
  virtual bool enable() = 0;
  // Called on the writing thread each time the sink disables itself. Set it before the first write.
  virtual void on_disabled(std::function<void(const State&)> callback) = 0;
};

struct SinkType {
  std::string_view name;
  std::string_view summary;  // one line for --help, e.g. "HTTP webhooks (POST, signed, batched)"
  // Reads the type-specific keys from `reader` (which already consumed the generic ones), records
  // problems in it, and returns the spec, or nullptr when there were problems.
  std::unique_ptr<SinkSpec> (*parse)(ConfigReader& reader);
  struct Capabilities {
    bool reopenable = false;   // Leaf::reopenable: reopened on SIGUSR1 / SIGHUP
    bool disableable = false;  // Leaf::disableable: its destination can switch it off
    bool batching = false;     // Leaf::batch: takes batches of events in one write
  } capabilities{};
  // The retry policy's default for `jitter` (an explicit `retry.jitter` overrides it): full
  // jitter spreads many senders' retries against one destination (see RetryConfig).
  bool full_jitter_by_default = false;
  // Whether its sinks talk to the `nats:` servers (the config then requires that section).
  bool needs_nats = false;
};

// The registry (registry.cpp): every sink type, in its table's order.
const SinkType* find_sink_type(std::string_view name);
std::vector<std::string_view> sink_type_names();
// "stdout, file, http": for error messages.
std::string sink_type_list();

}  // namespace evrouted
