// durable_config(): the YAML of an evrouted with one http sink on a disk queue, retrying for as
// long as it takes (the receiver on `hook_port` may be down), shared by the disk queue tests.
#pragma once

#include <string>

namespace evtest {

// `queue_extra` is appended inside the queue mapping (", when_full: ..."); `max_bytes` bounds the
// disk queue.
inline std::string durable_config(int hook_port, const std::string& queue_extra = "",
                                  const std::string& max_bytes = "64MiB") {
  return R"(
server: { listen: "127.0.0.1:0" }
shutdown_timeout: 2s
data_dir: ./state
sinks:
  hook:
    type: http
    url: http://127.0.0.1:)" +
         std::to_string(hook_port) + R"(/hooks
    timeout: 2s
    queue: { type: disk, fsync: always, max_bytes: )" +
         max_bytes + queue_extra + R"( }
    retry: { max_attempts: 0, max_elapsed: 1h, initial_backoff: 10ms, max_backoff: 100ms, breaker: false }
)";
}

}  // namespace evtest
