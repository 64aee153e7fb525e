// bare_server: the second ceiling of bench/load.sh. evrouted's own HTTP core (HttpServer) with a
// handler that does only what every ingest request must do: a POST's body is parsed as ingest
// parses it (parse_events, application/json: its fast path for one object, the event built with its
// id) and answered 202 {"accepted":N}, or 400 with the parser's reason. No routing, no queues, no
// sinks, no metrics. Any other method gets 200
// {"status":"ok"} (readiness probes). Between this and nginx `return 204` the benchmark tells the
// cost of the HTTP core from the cost of evrouted's own work.
//
//   bare_server [--listen 127.0.0.1:PORT] [--threads N]
//
// PORT 0 (the default) binds any free port; once serving, prints `listening on 127.0.0.1:PORT` on
// stdout. Runs until SIGTERM or SIGINT, then stops the server and exits 0. Every other server
// setting is HttpServer's default (Limits{}).
#include <pthread.h>
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>

#include "http_server.h"
#include "ingest.h"

namespace {

namespace http = evrouted::http;

http::Disposition handle(const http::Request& request, http::Response& response, bool) {
  if (request.method != "POST") {
    response.status = 200;
    response.body = R"({"status":"ok"})";
    return http::Disposition::kDone;
  }
  static const std::string kFields[] = {"type"};  // what ingest always reads
  const evrouted::IngestResult parsed =
      evrouted::parse_events(request.body, evrouted::BodyFormat::kJson, kFields);
  if (!parsed.error.empty()) {
    response.status = 400;
    response.body = http::error_body(parsed.error);
    return http::Disposition::kDone;
  }
  response.status = 202;
  response.body = "{\"accepted\":" + std::to_string(parsed.events.size()) + "}";
  return http::Disposition::kDone;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bare_server: evrouted's HTTP core with a parse-and-202 handler (bench/load.sh)"};
  std::string listen = "127.0.0.1:0";
  unsigned threads = 0;
  app.add_option("--listen", listen, "HOST:PORT to listen on (PORT 0: any free port)");
  app.add_option("--threads", threads, "event-loop threads (0: one per core)");
  CLI11_PARSE(app, argc, argv);
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "bare_server: --listen is HOST:PORT, not " << listen << "\n";
    return 2;
  }
  const std::string host = listen.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    std::cerr << "bare_server: bad port in --listen " << listen << "\n";
    return 2;
  }

  // SIGTERM/SIGINT are blocked in every thread (the server's threads inherit the mask) and taken
  // by one waiter thread, which stops the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  http::Limits limits;
  limits.threads = threads;
  http::HttpServer server(limits, handle, nullptr);
  int bound = 0;
  try {
    bound = server.bind(host, port);
  } catch (const std::exception& e) {
    std::cerr << "bare_server: " << e.what() << "\n";
    return 1;
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop();
  });
  std::thread announcer([&] {
    if (server.wait_until_serving(std::chrono::seconds(10))) {
      std::printf("listening on %s:%d\n", host.c_str(), bound);
      std::fflush(stdout);
    }
  });
  const bool served = server.serve();
  announcer.join();
  if (!served) {
    std::cerr << "bare_server: the event loops did not start\n";
    pthread_kill(stopper.native_handle(), SIGTERM);  // wakes the waiter: nothing to stop
  }
  stopper.join();
  return served ? 0 : 1;
}
