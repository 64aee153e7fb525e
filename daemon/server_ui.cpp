// The console: GET /ui (and its files under /ui/), GET / (a redirect to it), and GET /v1/status,
// the one JSON endpoint it needs besides /v1/sinks (version, uptime, memory budget, readiness).
#include <chrono>
#include <string>

#include "server.h"
#include "server_replies.h"
#include "ui/files.h"
#include "utc_time.h"

namespace evrouted {
namespace {

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".svg")) return "image/svg+xml";
  return "application/octet-stream";
}

// The console's own files only: no inline script or style, nothing from elsewhere, no framing.
constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace

bool Server::handle_ui(const Request& req, Response& res) {
  const std::string& path = req.path;
  if (path == "/" || path == "/ui/") {
    // Relative, so that a proxy serving evrouted under a prefix keeps it.
    res.status = 302;
    res.headers.emplace_back("Location", path == "/" ? "ui" : "../ui");
    res.content_type = "text/plain; charset=utf-8";
    res.body = "The console is at /ui\n";
    return true;
  }
  std::string_view name;
  if (path == "/ui") {
    name = "index.html";
  } else if (path.starts_with("/ui/")) {
    name = std::string_view(path).substr(4);
  } else {
    return false;
  }
  for (const ui::File& file : ui::files()) {
    if (file.name != name) continue;
    res.status = 200;
    res.content_type = content_type_of(name);
    res.body = file.bytes;
    res.headers.emplace_back("Content-Security-Policy", kPolicy);
    res.headers.emplace_back("X-Content-Type-Options", "nosniff");
    res.headers.emplace_back("Referrer-Policy", "no-referrer");
    res.headers.emplace_back("Cache-Control", "no-cache");
    return true;
  }
  return false;
}

void Server::handle_status(Response& res) {
  const auto uptime = std::chrono::steady_clock::now() - started_;
  const evroute::MemoryBudget& memory = router_.memory();
  const std::shared_ptr<const Tokens> tokens = this->tokens();
  const auto [ready_status, readiness] = this->readiness();
  reply(res, 200,
        Json{{"version", EVROUTE_VERSION},
             {"started_at", utc_time(started_at_)},
             {"uptime_seconds", std::chrono::duration_cast<std::chrono::seconds>(uptime).count()},
             {"ready", ready_status == 200},
             {"readiness", readiness},
             {"events_accepted", router_.events_accepted()},
             {"memory",
              {{"queued_bytes", memory.in_use()},
               {"limit_bytes", memory.limit()},
               {"rejected_requests", memory.rejections()}}},
             // What the console must ask for before an action (it never provokes a 401).
             {"auth",
              {{"ingest_needs_token", !tokens->ingest.empty()},
               {"admin_needs_token", !tokens->ingest.empty() || !tokens->admin.empty()}}}});
}

}  // namespace evrouted
