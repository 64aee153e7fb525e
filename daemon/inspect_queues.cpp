// --inspect-queues: see inspect_queues.h.
#include "inspect_queues.h"

#include <fmt/format.h>

#include <algorithm>

#include "nats/link.h"
#include "queues/disk.h"
#include "utc_time.h"

namespace evrouted {
namespace {

using Kind = evroute::DiskLogInspection::Problem::Kind;
using Json = nlohmann::ordered_json;

bool has(const evroute::DiskLogInspection& log, Kind kind) {
  return std::any_of(log.problems.begin(), log.problems.end(),
                     [&](const auto& p) { return p.kind == kind; });
}

// One word for a disk queue: clean, empty, torn, corrupt or unreadable.
std::string disk_state(const DiskQueueReport& q) {
  if (!q.error.is_ok()) return "unreadable";
  if (has(q.log, Kind::kCorrupt) || has(q.log, Kind::kBadCursor)) return "corrupt";
  if (has(q.log, Kind::kTornTail)) return "torn";
  return q.log.exists ? "clean" : "empty";
}

// ok, no_consumer or unavailable.
std::string jetstream_state(const JetStreamQueueReport& q) {
  if (!q.error.is_ok()) return "unavailable";
  return q.state ? "ok" : "no_consumer";
}

std::string kind_name(Kind kind) {
  switch (kind) {
    case Kind::kTornTail:
      return "torn_tail";
    case Kind::kCorrupt:
      return "corrupt";
    case Kind::kBadCursor:
      return "bad_cursor";
  }
  return "";
}

std::string when(evroute::Event::TimePoint t, UtcDigits digits) {
  return utc_time(std::chrono::time_point_cast<std::chrono::system_clock::duration>(t), digits);
}

std::string record_text(const evroute::DiskLogInspection::RecordInfo& r) {
  return fmt::format("{}, received {}", r.event_id, when(r.received, UtcDigits::kSeconds));
}

Json record_json(const std::optional<evroute::DiskLogInspection::RecordInfo>& r) {
  if (!r) return nullptr;
  return {{"id", r->event_id},
          {"received", when(r->received, UtcDigits::kMicroseconds)},
          {"segment", r->position.segment},
          {"offset", r->position.offset}};
}

std::string problem_text(const evroute::DiskLogInspection::Problem& p) {
  if (p.kind == Kind::kBadCursor) {
    return fmt::format("{}: {} ({} bytes); evrouted refuses to open this queue", p.file.string(),
                       p.what, p.bytes_after);
  }
  return fmt::format("{} in {} at offset {}: {}; the next start cuts off the {} byte(s) from there",
                     p.kind == Kind::kTornTail ? "torn tail" : "corrupt record", p.file.string(),
                     p.offset, p.what, p.bytes_after);
}

// "  label        text": the labels of a block aligned.
void line(std::string& out, std::string_view label, const std::string& text) {
  out += fmt::format("  {:<12} {}\n", label, text);
}

void disk_text(const DiskQueueReport& q, std::string& out) {
  out += fmt::format("disk queue '{}' ({}): {}\n", q.sink, q.dir.string(), disk_state(q));
  if (q.orphaned) {
    line(out, "orphaned",
         fmt::format("no configured sink '{}' has a disk queue: its events wait until one does "
                     "(not corruption)",
                     q.sink));
  }
  if (!q.error.is_ok()) {
    line(out, "error", q.error.message());
    return;
  }
  const evroute::DiskLogInspection& log = q.log;
  if (!log.exists) {
    line(out, "records", "0 (no directory yet: nothing was ever queued)");
    return;
  }
  line(out, "records",
       fmt::format("{} in {} segment(s), {} bytes", log.records, log.segments, log.bytes));
  line(out, "pending",
       log.next_pending ? fmt::format("{}, next {}", log.pending, record_text(*log.next_pending))
                        : std::to_string(log.pending));
  line(out, "delivered", fmt::format("{} (still on disk)", log.delivered));
  line(out, "cursor",
       log.cursor ? fmt::format("segment {}, offset {}", log.cursor->segment, log.cursor->offset)
                  : std::string("none (nothing delivered yet)"));
  if (log.oldest) line(out, "oldest", record_text(*log.oldest));
  if (log.newest) line(out, "newest", record_text(*log.newest));
  for (const auto& p : log.problems) line(out, "problem", problem_text(p));
}

void jetstream_text(const QueuesReport& report, const JetStreamQueueReport& q, std::string& out) {
  out += fmt::format("jetstream queue '{}' (stream {}, subject {}, consumer {}): {}\n", q.sink,
                     report.stream, q.subject, q.consumer, jetstream_state(q));
  if (q.orphaned) {
    line(out, "orphaned",
         fmt::format("no configured sink '{}' has a jetstream queue: its events wait until one "
                     "does (not corruption)",
                     q.sink));
  }
  if (!q.error.is_ok()) {
    line(out, "error", q.error.message() + " (not corruption)");
    return;
  }
  line(out, "stored", fmt::format("{} message(s) in the stream", q.stored));
  if (!q.state) {
    line(out, "consumer", "none yet (no evrouted has started this sink's queue)");
    return;
  }
  line(out, "pending", fmt::format("{} (not yet delivered to any replica)", q.state->pending));
  line(out, "ack pending",
       fmt::format("{} (delivered, not yet acknowledged)", q.state->ack_pending));
  line(out, "redelivered", std::to_string(q.state->redelivered));
  line(out, "ack floor",
       fmt::format("stream sequence {} (delivered up to {})", q.state->ack_floor_seq,
                   q.state->delivered_seq));
}

}  // namespace

int QueuesReport::exit_code() const {
  bool failed = false;
  for (const DiskQueueReport& q : disk) {
    if (!q.log.clean()) return kInspectCorrupt;
    failed |= !q.error.is_ok();
  }
  for (const JetStreamQueueReport& q : jetstream) failed |= !q.error.is_ok();
  return failed ? kInspectFailed : kInspectClean;
}

QueuesReport inspect_queues(const Config& config, std::chrono::milliseconds nats_timeout) {
  QueuesReport report;
  report.data_dir = config.data_dir;
  const auto inspect_disk = [&](const std::string& sink, std::filesystem::path dir, bool orphaned) {
    DiskQueueReport q{sink, std::move(dir), orphaned, {}, {}};
    if (auto log = evroute::inspect_disk_log(q.dir); log.ok()) {
      q.log = std::move(*log);
    } else {
      q.error = log.status();
    }
    report.disk.push_back(std::move(q));
  };
  for (const SinkConfig& sc : config.sinks) {
    if (sc.queue.type != QueueConfig::Type::kDisk) continue;
    inspect_disk(sc.name, disk_queue_dir(config.data_dir, sc.name), false);
  }
  for (const std::filesystem::path& dir : orphaned_disk_queue_dirs(config)) {
    inspect_disk(dir.filename().string(), dir, true);
  }

  std::vector<const SinkConfig*> jetstream_sinks;
  for (const SinkConfig& sc : config.sinks) {
    if (sc.queue.type == QueueConfig::Type::kJetStream) jetstream_sinks.push_back(&sc);
  }
  if (jetstream_sinks.empty() || !config.nats) return report;
  report.stream = config.nats->stream;
  evroute::Status nats_error;
  std::shared_ptr<nats::Link> link;
  // A link that creates no stream (streams = false): it only connects.
  if (auto opened = nats::Link::open(*config.nats, /*streams=*/false); !opened.ok()) {
    nats_error = opened.status();
  } else if (link = std::move(*opened);
             !link->wait_ready(std::chrono::steady_clock::now() + nats_timeout)) {
    nats_error = link->ready();
  }
  std::optional<JetStreamStreamState> stream;
  if (nats_error.is_ok()) {
    if (auto s = read_jetstream_stream(*link); s.ok()) {
      stream = *s;
    } else {
      nats_error = s.status();
    }
  }
  report.stream_error = nats_error;
  report.stream_state = stream;
  const auto inspect_jetstream = [&](const std::string& sink, bool orphaned) {
    JetStreamQueueReport q;
    q.sink = sink;
    q.orphaned = orphaned;
    q.subject = nats::queue_subject(config.nats->stream, sink);
    q.consumer = jetstream_consumer(sink);
    if (!nats_error.is_ok()) {
      q.error = evroute::Status::unavailable("nats unavailable: " + nats_error.message());
    } else if (stream) {
      const auto it = stream->per_sink.find(sink);
      q.stored = it == stream->per_sink.end() ? 0 : it->second;
      if (auto c = read_jetstream_consumer(*link, sink); c.ok()) {
        q.state = *c;
      } else {
        q.error = evroute::Status::unavailable("nats unavailable: " + c.status().message());
      }
    }
    report.jetstream.push_back(std::move(q));
  };
  for (const SinkConfig* sc : jetstream_sinks) inspect_jetstream(sc->name, false);
  // Events of a sink not configured (any more) with a jetstream queue, waiting in the stream (as
  // JetStreamKind::warn_orphaned finds them).
  if (stream) {
    for (const auto& [subject_sink, messages] : stream->per_sink) {
      const std::string& name = subject_sink;  // a lambda cannot capture a structured binding
      const bool configured = std::any_of(jetstream_sinks.begin(), jetstream_sinks.end(),
                                          [&](const SinkConfig* sc) { return sc->name == name; });
      if (!configured && messages > 0) inspect_jetstream(name, true);
    }
  }
  return report;
}

std::string queues_text(const QueuesReport& report) {
  std::string out;
  for (const DiskQueueReport& q : report.disk) {
    disk_text(q, out);
    out += "\n";
  }
  if (!report.jetstream.empty() && report.stream_error.is_ok() && !report.stream_state) {
    out += fmt::format("jetstream stream {}: does not exist yet\n", report.stream);
  }
  if (!report.jetstream.empty() && report.stream_state) {
    const JetStreamStreamState& s = *report.stream_state;
    out += fmt::format("jetstream stream {}: {} message(s), {} bytes", report.stream, s.messages,
                       s.bytes);
    if (s.messages > 0) {
      out += fmt::format(", sequences {}..{}, {} .. {}", s.first_seq, s.last_seq,
                         utc_time(std::chrono::system_clock::time_point(
                             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 std::chrono::nanoseconds(s.first_time_ns)))),
                         utc_time(std::chrono::system_clock::time_point(
                             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 std::chrono::nanoseconds(s.last_time_ns)))));
    }
    out += "\n";
  }
  for (const JetStreamQueueReport& q : report.jetstream) {
    jetstream_text(report, q, out);
    out += "\n";
  }
  std::size_t bad = 0, orphaned = 0, unreadable = 0;
  for (const DiskQueueReport& q : report.disk) {
    bad += !q.log.clean();
    orphaned += q.orphaned;
    unreadable += !q.error.is_ok();
  }
  for (const JetStreamQueueReport& q : report.jetstream) {
    orphaned += q.orphaned;
    unreadable += !q.error.is_ok();
  }
  const std::size_t total = report.disk.size() + report.jetstream.size();
  if (total == 0) {
    out += fmt::format("no disk or jetstream queues are configured, and {}/queues holds none\n",
                       report.data_dir);
  }
  std::string summary = fmt::format("{} queue(s): {} torn or corrupt", total, bad);
  if (orphaned > 0) summary += fmt::format(", {} orphaned (not corruption)", orphaned);
  if (unreadable > 0) summary += fmt::format(", {} could not be read", unreadable);
  const int code = report.exit_code();
  out += fmt::format("{}; nothing was modified; exit {} ({})\n", summary, code,
                     code == kInspectClean     ? "clean"
                     : code == kInspectCorrupt ? "torn or corrupt"
                                               : "incomplete");
  return out;
}

Json queues_json(const QueuesReport& report) {
  Json queues = Json::array();
  for (const DiskQueueReport& q : report.disk) {
    const evroute::DiskLogInspection& log = q.log;
    Json problems = Json::array();
    for (const auto& p : log.problems) {
      problems.push_back({{"kind", kind_name(p.kind)},
                          {"file", p.file.string()},
                          {"offset", p.offset},
                          {"bytes_after", p.bytes_after},
                          {"what", p.what}});
    }
    queues.push_back({{"sink", q.sink},
                      {"type", "disk"},
                      {"state", disk_state(q)},
                      {"orphaned", q.orphaned},
                      {"dir", q.dir.string()},
                      {"segments", log.segments},
                      {"records", log.records},
                      {"bytes", log.bytes},
                      {"pending", log.pending},
                      {"delivered", log.delivered},
                      {"cursor", log.cursor ? Json{{"segment", log.cursor->segment},
                                                   {"offset", log.cursor->offset}}
                                            : Json(nullptr)},
                      {"oldest", record_json(log.oldest)},
                      {"newest", record_json(log.newest)},
                      {"next_pending", record_json(log.next_pending)},
                      {"problems", std::move(problems)},
                      {"error", q.error.is_ok() ? Json(nullptr) : Json(q.error.message())}});
  }
  for (const JetStreamQueueReport& q : report.jetstream) {
    const auto count = [&](std::uint64_t JetStreamConsumerState::*field) {
      return q.state ? Json((*q.state).*field) : Json(nullptr);
    };
    queues.push_back({{"sink", q.sink},
                      {"type", "jetstream"},
                      {"state", jetstream_state(q)},
                      {"orphaned", q.orphaned},
                      {"subject", q.subject},
                      {"consumer", q.consumer},
                      {"stored", q.stored},
                      {"pending", count(&JetStreamConsumerState::pending)},
                      {"ack_pending", count(&JetStreamConsumerState::ack_pending)},
                      {"redelivered", count(&JetStreamConsumerState::redelivered)},
                      {"delivered_seq", count(&JetStreamConsumerState::delivered_seq)},
                      {"ack_floor_seq", count(&JetStreamConsumerState::ack_floor_seq)},
                      {"error", q.error.is_ok() ? Json(nullptr) : Json(q.error.message())}});
  }
  Json stream = nullptr;
  if (!report.jetstream.empty()) {
    // The counts are null when the stream could not be read or does not exist yet.
    const auto& s = report.stream_state;
    const auto count = [&](std::uint64_t JetStreamStreamState::*field) {
      return s ? Json((*s).*field) : Json(nullptr);
    };
    stream = {{"name", report.stream},
              {"exists", s                             ? Json(true)
                         : report.stream_error.is_ok() ? Json(false)
                                                       : Json(nullptr)},
              {"messages", count(&JetStreamStreamState::messages)},
              {"bytes", count(&JetStreamStreamState::bytes)},
              {"first_seq", count(&JetStreamStreamState::first_seq)},
              {"last_seq", count(&JetStreamStreamState::last_seq)}};
  }
  const int code = report.exit_code();
  return {{"data_dir", report.data_dir},
          {"verdict", code == kInspectClean     ? "clean"
                      : code == kInspectCorrupt ? "corrupt"
                                                : "incomplete"},
          {"exit_code", code},
          {"queues", std::move(queues)},
          {"stream", std::move(stream)}};
}

}  // namespace evrouted
