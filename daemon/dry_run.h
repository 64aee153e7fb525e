// Dry run (`evrouted --dry-run --config PATH < events.ndjson`): shows what every sink would send
// for the events read from a stream, without sending, writing or listening. For testing a config
// before deploying it.
//
// Each non-blank input line is one JSON object, made into an event by the parser POST /v1/events
// uses for application/x-ndjson (daemon/ingest.h), so ids and attributes are exactly the server's.
// For each event, and each sink in config order, it prints the sink's filter verdict (which glob
// each filtered field matched, or why the event is filtered out) and, when the event reaches the
// sink, the sink's SinkSpec::preview(): for http the method, URL, headers (signature included, made
// by the real signing code) and body; for file the path and the line; for stdout the line. Output:
//
//   event 1 (line 1): id "evt-1", type "invoice.paid"
//     sink billing (http): filter matched: type "invoice.paid" ~ "invoice.*"
//       POST http://127.0.0.1:9000/hooks
//       Content-Type: application/json
//       ...
//
//       {"id":"evt-1","type":"invoice.paid"}
//     sink console (stdout): filtered out: type "invoice.paid" matches none of "user.*"
//
// Preview lines are indented by 6 spaces (a blank line stays empty); bodies and lines are
// single-line JSON, so each is exact once the indent is removed. A bad line is reported on `err` as
// "line N: why"; the lines after it are still shown.
// Thread-safety: none needed (one call at a time).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <iosfwd>

#include "config.h"

namespace evrouted {

struct DryRunResult {
  std::size_t events = 0;     // events shown
  std::size_t bad_lines = 0;  // input lines that are not events
};

// `now` gives each event's attempt time (webhook-timestamp, path templates); empty: the system
// clock.
DryRunResult dry_run(const Config& config, std::istream& in, std::ostream& out, std::ostream& err,
                     std::function<std::chrono::system_clock::time_point()> now = {});

}  // namespace evrouted
