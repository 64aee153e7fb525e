// evrouted: loads a YAML topology of sinks, accepts JSON events over HTTP and fans them out.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "config.h"
#include "dry_run.h"
#include "inspect_queues.h"
#include "logging.h"
#include "nats/link.h"
#include "reloader.h"
#include "router.h"
#include "server.h"
#include "sinks/http/webhook_client.h"
#include "sinks/registry.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitConfig = 1;    // bad config, or a sink or the listener could not start
constexpr int kExitBadInput = 2;  // --dry-run: some input lines were not events
// --inspect-queues: kInspectClean (0), kInspectCorrupt (1), kInspectFailed (2, a config error
// included: 1 there means corruption), inspect_queues.h.

// Signals are taken synchronously by the main thread (sigwait), so they are blocked in every
// thread; the ones the HTTP and sink threads inherit stay blocked.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  return set;
}

std::string describe_sinks(const evrouted::Router& router) {
  std::string s;
  for (const evrouted::SinkSnapshot& sink : router.snapshot()) {
    if (!s.empty()) s += ", ";
    s += sink.name + " (" + sink.description + ")";
  }
  return s;
}

// Tells systemd "still alive" every half WatchdogSec= while the daemon runs. Without WatchdogSec=
// (or outside systemd) it does nothing.
class Watchdog {
 public:
  Watchdog() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    const auto period = std::chrono::microseconds(usec / 2);
    thread_ = std::thread([this, period] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, period, [this] { return stop_; })) sd_notify(0, "WATCHDOG=1");
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// --probe: GET /readyz on the configured listen address (for container health checks, which must
// not need curl in the image). Exit 0 when ready.
int probe(const std::string& config_path) {
  evrouted::LoadResult loaded = evrouted::load_config_file(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return kExitConfig;
  }
  std::string host = loaded.config->server.host;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  // Over TLS when the listener has it (the certificate is not checked: this is our own server,
  // whose name may not be "localhost").
  evrouted::HttpSinkConfig target;
  const bool ipv6 = host.find(':') != std::string::npos;
  target.scheme_host_port = std::string(loaded.config->server.tls ? "https" : "http") + "://" +
                            (ipv6 ? "[" + host + "]" : host) + ":" +
                            std::to_string(loaded.config->server.port);
  target.timeout = std::chrono::seconds(2);
  target.tls_verify = false;
  evrouted::WebhookResponse response;
  evroute::Status status;
  try {
    evrouted::WebhookConnection connection(std::make_shared<evrouted::WebhookTarget>(target));
    evrouted::WebhookRequest request;
    request.method = "GET";
    request.path = "/readyz";
    status = connection.send(request, &response);
  } catch (const std::exception& e) {
    status = evroute::Status(evroute::Code::kUnavailable, e.what());
  }
  if (!status.is_ok()) {
    std::fprintf(stderr, "probe: %s: %s\n", target.scheme_host_port.c_str(),
                 status.to_string().c_str());
    return 1;
  }
  std::printf("probe: %d\n", response.status);
  return response.status == 200 ? 0 : 1;
}

// --dry-run: events from stdin, what each sink would send to stdout. Builds no sink, opens no file
// or port.
int dry_run(const std::string& config_path) {
  evrouted::LoadResult loaded = evrouted::load_config_file(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return kExitConfig;
  }
  const evrouted::DryRunResult r =
      evrouted::dry_run(*loaded.config, std::cin, std::cout, std::cerr);
  std::cout.flush();
  std::fprintf(stderr, "dry run: %zu event(s), %zu bad line(s); nothing was sent or written\n",
               r.events, r.bad_lines);
  return r.bad_lines > 0 ? kExitBadInput : kExitOk;
}

// --inspect-queues: what every disk and jetstream queue holds, as text or one JSON document on
// stdout. Starts nothing and modifies no queue (inspect_queues.h).
int inspect_queues(const std::string& config_path, bool json) {
  evrouted::LoadResult loaded = evrouted::load_config_file(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    return evrouted::kInspectFailed;
  }
  const evrouted::QueuesReport report = evrouted::inspect_queues(*loaded.config);
  if (json) {
    std::cout << evrouted::queues_json(report).dump(2) << "\n";
  } else {
    std::cout << evrouted::queues_text(report);
  }
  std::cout.flush();
  return report.exit_code();
}

// Builds every sink's pipeline; on failure prints where the sink is declared, as --check reports
// problems (FILE:LINE:COL), and returns null.
std::unique_ptr<evrouted::Router> start_router(const evrouted::Config& config,
                                               const std::string& config_path) {
  std::string failed_sink;
  auto started = evrouted::Router::start(config, &failed_sink);
  if (started.ok()) return std::move(*started);
  const std::string& message = started.status().message();
  for (const evrouted::SinkConfig& sc : config.sinks) {
    if (sc.name != failed_sink) continue;
    const evrouted::ConfigError where{config_path, sc.line, sc.column, message};
    std::fprintf(stderr, "%s\n", where.to_string().c_str());
  }
  spdlog::critical("{}; not starting", message);
  return nullptr;
}

// Takes signals until SIGTERM or SIGINT, which it returns. SIGHUP (systemctl reload) re-reads and
// applies the configuration, reopens file sinks and re-enables sinks their destination disabled
// (410 Gone; Type=notify: RELOADING=1 ... READY=1); SIGUSR1 reopens file sinks (logrotate).
int serve_signals(const sigset_t& signals, evrouted::Reloader& reloader, evrouted::Router& router,
                  const evrouted::Config& config, int port) {
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
      reloader.reload();
      sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%d, %zu sinks", config.server.host.c_str(),
                 port, router.sink_count());
    } else if (sig == SIGUSR1) {
      spdlog::info("SIGUSR1: reopening file sinks");
      router.reopen();
    } else {
      return sig;
    }
  }
}

// What happened to every accepted event (counted per sink it was routed to), in one line.
void log_stopped(const evrouted::Router::ShutdownReport& report) {
  std::string summary = fmt::format("{} delivered", report.delivered);
  if (report.failed > 0) {
    summary += fmt::format(", {} failed ({} dead-lettered{})", report.failed, report.dead_lettered,
                           report.dead_letter_errors > 0
                               ? fmt::format(", {} could not be stored", report.dead_letter_errors)
                               : "");
  }
  if (report.dropped > 0) summary += fmt::format(", {} dropped by queue policy", report.dropped);
  if (report.kept_on_disk > 0) {
    summary += fmt::format(", {} kept in disk queues for the next start", report.kept_on_disk);
  }
  if (report.kept_in_jetstream > 0) {
    summary += fmt::format(", {} given back to JetStream for another replica or the next start",
                           report.kept_in_jetstream);
  }
  if (report.undelivered > 0) {
    spdlog::error("stopped: {} event(s) undelivered at the shutdown deadline; {}",
                  report.undelivered, summary);
  } else if (report.dead_letter_errors > 0) {
    spdlog::error("stopped: {}", summary);
  } else if (report.failed > 0 || report.dropped > 0 || report.kept_on_disk > 0 ||
             report.kept_in_jetstream > 0) {
    spdlog::warn("stopped: {}", summary);
  } else {
    spdlog::info("stopped: every accepted event was delivered ({})", summary);
  }
}

int run(const std::string& config_path) {
  evrouted::LoadResult loaded = evrouted::load_config_file(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    spdlog::critical("{} problem(s) in {}; not starting", loaded.errors.size(), config_path);
    return kExitConfig;
  }
  evrouted::Config config = std::move(*loaded.config);  // what runs; a reload updates it

  const sigset_t signals = handled_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // The NATS connection (jetstream queues, nats sinks) comes up in the background: a NATS that is
  // down does not stop evrouted starting, it makes it not ready (/readyz) until it answers.
  if (evroute::Status s = evrouted::nats::configure(config); !s.is_ok()) {
    spdlog::critical("{}; not starting", s.message());
    return kExitConfig;
  }
  std::unique_ptr<evrouted::Router> router = start_router(config, config_path);
  if (!router) return kExitConfig;
  evrouted::Server server(config, *router);
  evrouted::Reloader reloader(config_path, config, *router, server);
  int port = 0;
  try {
    port = server.bind();
  } catch (const std::exception& e) {
    spdlog::critical("{}; not starting", e.what());
    router->shutdown(std::chrono::seconds(0));
    return kExitConfig;
  }

  std::thread http([&] {
    if (!server.serve()) {
      spdlog::critical("the HTTP server stopped unexpectedly");
      kill(getpid(), SIGTERM);
    }
  });
  if (!server.wait_until_serving(std::chrono::seconds(10))) {
    spdlog::critical("the HTTP server did not start");
    kill(getpid(), SIGTERM);
  }
  spdlog::info("evrouted {} started: config {}, listening on {}:{}, sinks: {}", EVROUTE_VERSION,
               config_path, config.server.host, port, describe_sinks(*router));
  evrouted::warn_if_exposed(config.server);
  // Serving and every sink open: ready. Under systemd (Type=notify) this is what makes
  // `systemctl start` return.
  sd_notifyf(0, "READY=1\nSTATUS=listening on %s:%d, %zu sinks\nMAINPID=%d",
             config.server.host.c_str(), port, router->sink_count(), static_cast<int>(getpid()));
  Watchdog watchdog;
  const int stop_signal = serve_signals(signals, reloader, *router, config, port);

  sd_notify(0, "STOPPING=1\nSTATUS=draining queues");
  server.begin_drain();
  spdlog::info(
      "{}: draining queues (up to {} ms), new events are refused",
      stop_signal == SIGTERM ? "SIGTERM" : "SIGINT",
      std::chrono::duration_cast<std::chrono::milliseconds>(config.shutdown_timeout).count());
  const auto report = router->shutdown(config.shutdown_timeout);
  server.stop();
  http.join();
  log_stopped(report);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"evrouted: routes JSON events received over HTTP to the sinks of a YAML topology"};
  std::string config_path = "/etc/evroute/evroute.yaml";
  std::string log_level = "info";
  std::string log_format = "text";
  bool check = false;
  bool probe_only = false;
  bool dry = false;
  bool inspect = false;
  bool json = false;
  app.add_option("-c,--config", config_path, "Configuration file")->capture_default_str();
  app.add_flag("--check", check, "Validate the configuration, print every problem, and exit");
  app.add_flag("--probe", probe_only,
               "Ask the evrouted running on the configured listen address whether it is ready "
               "(GET /readyz); exit 0 if so (for container health checks)");
  app.add_flag("--dry-run", dry,
               "Read NDJSON events from stdin and print what every sink would send for each; "
               "send, write and listen nothing. Exit 2 if some lines are not events");
  auto* inspect_flag = app.add_flag(
      "--inspect-queues", inspect,
      "Show what every disk and jetstream queue holds (records, pending, delivered, oldest and "
      "newest events, torn or corrupt tails, orphaned queues) without starting the daemon or "
      "modifying anything. Exit 0 clean, 1 torn or corrupt, 2 config error or unreadable");
  app.add_flag("--json", json, "With --inspect-queues: print one JSON document")
      ->needs(inspect_flag);
  app.add_option("--log-level", log_level, "Log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", log_format, "Log format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.set_version_flag("--version", std::string("evrouted ") + EVROUTE_VERSION);
  std::string footer = "Sink types (a sink's `type:` in the configuration):";
  for (std::string_view name : evrouted::sink_type_names()) {
    footer += fmt::format("\n  {:<8} {}", name, evrouted::find_sink_type(name)->summary);
  }
  app.footer(footer);
  CLI11_PARSE(app, argc, argv);

  evrouted::setup_logging(log_level, log_format);

  if (check) {
    evrouted::LoadResult loaded = evrouted::load_config_file(config_path);
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
    if (!loaded.config) return kExitConfig;
    evrouted::warn_if_exposed(loaded.config->server);
    std::printf("%s: OK (%zu sinks)\n", config_path.c_str(), loaded.config->sinks.size());
    return kExitOk;
  }
  if (probe_only) return probe(config_path);
  if (dry) return dry_run(config_path);
  if (inspect) {
    const int code = inspect_queues(config_path, json);
    evrouted::nats::shutdown();  // libnats' threads, when jetstream queues were read
    return code;
  }
  const int code = run(config_path);
  evrouted::nats::shutdown();  // after every queue and sink using NATS is gone
  return code;
}
