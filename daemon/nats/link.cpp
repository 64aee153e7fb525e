#include "nats/link.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace evrouted::nats {
namespace {

using Clock = std::chrono::steady_clock;

std::mutex g_mu;
std::shared_ptr<Link> g_link;

std::string servers_text(const NatsConfig& config) {
  std::string out;
  for (const std::string& s : config.servers) out += (out.empty() ? "" : ", ") + s;
  return out;
}

evroute::Status unavailable(std::string why) {
  return evroute::Status::unavailable(std::move(why)).with_retry_after(std::chrono::seconds(1));
}

}  // namespace

std::string describe(natsStatus s, jsErrCode code) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail && *detail && last == s) {
    text = detail;
    // libnats prefixes where it noticed: "(js.c:1750): Server Shutdown".
    if (text.starts_with("(")) {
      if (const auto end = text.find("): "); end != std::string::npos) text.erase(0, end + 3);
    }
  }
  if (static_cast<int>(code) != 0) text += " (JetStream error " + std::to_string(code) + ")";
  return text;
}

// One JetStream context for asynchronous publishes, used by one publish() call at a time: its
// AckHandler counts the PubAcks of the call's messages. A context whose messages are not all
// answered when a call gives up is not reused until they are (libnats fails each one after its
// MaxWait), so a late answer is never counted for another call.
struct Link::Publisher {
  jsCtx* js = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t sent = 0;      // messages handed to libnats
  std::uint64_t answered = 0;  // PubAcks and failures counted by on_ack
  std::uint64_t failed = 0;    // of those, failures (the current call's: reset by each call)
  std::string first_error;

  ~Publisher() {
    if (js) jsCtx_Destroy(js);
  }
  bool idle() {
    std::lock_guard lock(mu);
    return answered == sent;
  }
  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<Publisher*>(closure);
    {
      std::lock_guard lock(self->mu);
      ++self->answered;
      if (!pa) {
        ++self->failed;
        if (self->first_error.empty() && pae && pae->Err == NATS_NO_RESPONDERS) {
          // JetStream answers a publish to a subject no stream holds with "no responders".
          const char* subject = natsMsg_GetSubject(msg);
          self->first_error = "no JetStream stream captures subject " +
                              std::string(subject ? subject : "?") +
                              " (create one whose subjects include it)";
        } else if (self->first_error.empty() && pae && pae->Err == NATS_TIMEOUT) {
          self->first_error = "no PubAck in time";
        } else if (self->first_error.empty()) {
          self->first_error =
              pae ? (pae->ErrText && *pae->ErrText ? std::string(pae->ErrText)
                                                   : std::string(natsStatus_GetText(pae->Err))) +
                        (pae->ErrCode ? " (JetStream error " + std::to_string(pae->ErrCode) + ")"
                                      : "")
                  : "no acknowledgement";
        }
      }
    }
    self->cv.notify_all();
    natsMsg_Destroy(msg);
  }
};

Link::Link(const NatsConfig& config, bool streams) : config_(config), streams_(streams) {}

evroute::Result<std::shared_ptr<Link>> Link::open(const NatsConfig& config, bool streams) {
  std::shared_ptr<Link> link(new Link(config, streams));
  if (evroute::Status s = link->start(); !s.is_ok()) return s;
  return link;
}

evroute::Status Link::start() {
  const auto fail = [&](const char* what, natsStatus s) {
    return evroute::Status::invalid_argument(std::string("nats: ") + what + ": " + describe(s));
  };
  natsStatus s = natsOptions_Create(&opts_);
  if (s != NATS_OK) return fail("cannot set up the client", s);
  std::vector<const char*> servers;
  for (const std::string& url : config_.servers) servers.push_back(url.c_str());
  s = natsOptions_SetServers(opts_, servers.data(), static_cast<int>(servers.size()));
  if (s != NATS_OK) return fail("servers", s);
  natsOptions_SetName(opts_, "evrouted");
  natsOptions_SetMaxReconnect(opts_, -1);  // forever: evrouted never gives up on NATS
  natsOptions_SetReconnectWait(opts_, 250);
  natsOptions_SetTimeout(opts_, 2000);
  natsOptions_SetRetryOnFailedConnect(opts_, true, &Link::on_connected, this);
  natsOptions_SetReconnectedCB(opts_, &Link::on_connected, this);
  natsOptions_SetDisconnectedCB(opts_, &Link::on_disconnected, this);
  natsOptions_SetClosedCB(opts_, &Link::on_closed, this);
  if (!config_.token.empty()) natsOptions_SetToken(opts_, config_.token.c_str());
  if (!config_.user.empty()) {
    natsOptions_SetUserInfo(opts_, config_.user.c_str(), config_.password.c_str());
  }
  if (!config_.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts_, config_.creds_file.c_str(), nullptr);
    if (s != NATS_OK) return fail("auth.creds_file", s);
  }
  if (config_.tls) {
    natsOptions_SetSecure(opts_, true);
    if (!config_.ca_file.empty() &&
        (s = natsOptions_LoadCATrustedCertificates(opts_, config_.ca_file.c_str())) != NATS_OK) {
      return fail("tls.ca_file", s);
    }
    if (!config_.client_cert.empty() &&
        (s = natsOptions_LoadCertificatesChain(opts_, config_.client_cert.c_str(),
                                               config_.client_key.c_str())) != NATS_OK) {
      return fail("tls.client_cert", s);
    }
  }
  s = natsConnection_Connect(&nc_, opts_);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) return fail("cannot connect", s);
  if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::warn("nats: cannot connect to {} yet{}; retrying in the background",
                 servers_text(config_), last_error());
  }
  s = natsConnection_JetStream(&js_, nc_, nullptr);
  if (s != NATS_OK) return fail("cannot set up JetStream", s);
  thread_ = std::thread([this] { run(); });
  return {};
}

Link::~Link() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Close first, then the contexts. natsConnection_Close does not wait for the connection's
  // callbacks: libnats posts them (disconnected, then closed) to its callback thread, which runs
  // them later, so the closed callback is awaited before `this` may go (else on_disconnected
  // would read a destroyed Link). Bounded: a libnats that never calls it costs 5 s, not a hang.
  if (nc_) {
    natsConnection_Close(nc_);
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(5), [&] { return closed_; })) {
      spdlog::error("nats: the connection's closed callback did not come within 5 s");
    }
  }
  publishers_.clear();
  if (js_) jsCtx_Destroy(js_);
  if (nc_) natsConnection_Destroy(nc_);
  if (opts_) natsOptions_Destroy(opts_);
}

void Link::on_connected(natsConnection* nc, void* self) {
  auto* link = static_cast<Link*>(self);
  char url[256] = "";
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  spdlog::info("nats: connected to {}", url);
  {
    std::lock_guard lock(link->mu_);
    link->recheck_ = true;
  }
  link->cv_.notify_all();
}

void Link::on_disconnected(natsConnection*, void* self) {
  auto* link = static_cast<Link*>(self);
  bool closing;
  {
    std::lock_guard lock(link->mu_);
    closing = link->stop_;
  }
  if (!closing) {
    spdlog::warn("nats: disconnected; reconnecting to one of {}", servers_text(link->config_));
  }
  link->cv_.notify_all();
}

void Link::on_closed(natsConnection*, void* self) {
  auto* link = static_cast<Link*>(self);
  // Notified under the lock: once the destructor sees closed_, it may destroy cv_.
  std::lock_guard lock(link->mu_);
  link->closed_ = true;
  link->cv_.notify_all();
}

bool Link::connected() const {
  return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

// " (why)" when the connection recorded an error (a refused token...), else "".
std::string Link::last_error() const {
  const char* text = nullptr;
  if (!nc_ || natsConnection_GetLastError(nc_, &text) == NATS_OK || !text || !*text) return "";
  return std::string(" (") + text + ")";
}

evroute::Status Link::ready() const {
  if (!connected()) {
    return unavailable("NATS is not reachable (" + servers_text(config_) + ")" + last_error());
  }
  std::lock_guard lock(mu_);
  if (!streams_ok_) {
    return unavailable(not_ready_why_.empty() ? "NATS JetStream streams are being set up"
                                              : not_ready_why_);
  }
  return {};
}

bool Link::wait_ready(Clock::time_point deadline) const {
  // ready() takes mu_: never call it with the lock held.
  while (!ready().is_ok()) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    std::unique_lock lock(mu_);
    if (stop_) return false;
    cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(100)));
  }
  return true;
}

void Link::require_streams() {
  if (streams_.exchange(true, std::memory_order_acq_rel)) return;
  {
    std::lock_guard lock(mu_);
    recheck_ = true;
    streams_ok_ = false;
  }
  cv_.notify_all();
}

std::string queue_subject(std::string_view stream, std::string_view sink) {
  return std::string(stream) + ".sink." + std::string(sink);
}

std::string Link::queue_subject(std::string_view sink) const {
  return nats::queue_subject(config_.stream, sink);
}

std::string Link::dead_subject(std::string_view sink) const {
  return dead_stream() + "." + std::string(sink);
}

void Link::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    // Check the streams after each (re)connection, and every 2 s while they are not in place.
    cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stop_ || (recheck_ && connected()); });
    if (stop_) break;
    if (!connected() || (!recheck_ && streams_ok_)) continue;
    recheck_ = false;
    lock.unlock();
    const evroute::Status s = ensure_streams();
    lock.lock();
    if (s.is_ok() && !streams_ok_ && streams_.load(std::memory_order_acquire)) {
      spdlog::info("nats: JetStream streams {} and {} ready", config_.stream, dead_stream());
    }
    if (!s.is_ok() && not_ready_why_ != s.message()) spdlog::error("{}", s.message());
    streams_ok_ = s.is_ok();
    not_ready_why_ = s.is_ok() ? "" : s.message();
    generation_.fetch_add(1, std::memory_order_acq_rel);
    lock.unlock();
    cv_.notify_all();
    lock.lock();
  }
}

evroute::Status Link::ensure_streams() {
  if (!streams_.load(std::memory_order_acquire)) return {};
  struct Wanted {
    std::string name, subjects;
    bool dead;
  };
  const Wanted wanted[] = {{config_.stream, config_.stream + ".sink.>", false},
                           {dead_stream(), dead_stream() + ".>", true}};
  for (const Wanted& w : wanted) {
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char* subjects[] = {w.subjects.c_str()};
    cfg.Name = w.name.c_str();
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Retention = w.dead ? js_LimitsPolicy : js_WorkQueuePolicy;
    cfg.MaxBytes = static_cast<int64_t>(config_.max_bytes);
    cfg.Discard = js_DiscardNew;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = config_.replicas;
    cfg.AllowDirect = w.dead;
    jsStreamInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddStream(&info, js_, &cfg, nullptr, &code);
    if (info) jsStreamInfo_Destroy(info);
    if (s == NATS_OK) continue;
    if (code == JSStreamNameExistErr) {
      // It exists with other settings (another evrouted's, or changed by hand): used as it is.
      spdlog::warn(
          "nats: stream {} exists with settings other than this config's; using it as it is",
          w.name);
      continue;
    }
    return evroute::Status::unavailable("nats: cannot create JetStream stream " + w.name + ": " +
                                        describe(s, code));
  }
  return {};
}

std::unique_ptr<Link::Publisher> Link::take_publisher() {
  {
    std::lock_guard lock(mu_);
    for (auto it = publishers_.begin(); it != publishers_.end(); ++it) {
      if ((*it)->idle()) {
        std::unique_ptr<Publisher> p = std::move(*it);
        publishers_.erase(it);
        return p;
      }
    }
  }
  auto p = std::make_unique<Publisher>();
  jsOptions o;
  jsOptions_Init(&o);
  o.PublishAsync.AckHandler = &Publisher::on_ack;
  o.PublishAsync.AckHandlerClosure = p.get();
  if (natsConnection_JetStream(&p->js, nc_, &o) != NATS_OK) return nullptr;
  return p;
}

void Link::give_back(std::unique_ptr<Publisher> p) {
  std::lock_guard lock(mu_);
  publishers_.push_back(std::move(p));
}

evroute::Status Link::publish(std::vector<MsgPtr> msgs, std::chrono::nanoseconds timeout,
                              std::stop_token stop) {
  if (msgs.empty()) return {};
  if (!connected()) return unavailable("NATS is not reachable (" + servers_text(config_) + ")");
  std::unique_ptr<Publisher> p = take_publisher();
  if (!p) return unavailable("nats: cannot set up a JetStream publisher");
  const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = wait_ms;
  std::uint64_t target;
  {
    std::lock_guard lock(p->mu);
    p->failed = 0;
    p->first_error.clear();
    target = p->sent;
  }
  std::string send_error;
  for (MsgPtr& m : msgs) {
    natsMsg* raw = m.release();
    const natsStatus s = js_PublishMsgAsync(p->js, &raw, &po);
    if (s != NATS_OK) {
      natsMsg_Destroy(raw);  // still ours when the call failed
      send_error = describe(s);
      break;
    }
    std::lock_guard lock(p->mu);
    ++p->sent;
    ++target;
  }
  bool all_answered;
  bool stopped = false;
  std::string error;
  {
    // Wakes the wait below (under p->mu, so that the wake-up cannot fall between its check of
    // the predicate and its sleep).
    std::stop_callback wake(stop, [&p] {
      std::lock_guard lock(p->mu);
      p->cv.notify_all();
    });
    std::unique_lock lock(p->mu);
    p->cv.wait_for(lock, timeout + std::chrono::milliseconds(500),
                   [&] { return p->answered >= target || stop.stop_requested(); });
    all_answered = p->answered >= target;
    stopped = !all_answered && stop.stop_requested();
    if (!p->first_error.empty()) error = p->first_error;
  }
  give_back(std::move(p));
  if (stopped) {
    return evroute::Status::closed("closed while waiting for JetStream's acknowledgements");
  }
  if (!send_error.empty()) return unavailable("NATS JetStream: cannot publish: " + send_error);
  if (!error.empty()) return unavailable("NATS JetStream did not store the events: " + error);
  if (!all_answered) return unavailable("NATS JetStream did not acknowledge the events in time");
  return {};
}

evroute::Status configure(const Config& config) {
  std::lock_guard lock(g_mu);
  if (g_link || !config.nats) return {};
  const bool streams = std::any_of(config.sinks.begin(), config.sinks.end(), [](const auto& sc) {
    return sc.queue.type == QueueConfig::Type::kJetStream;
  });
  auto link = Link::open(*config.nats, streams);
  if (!link.ok()) return link.status();
  g_link = std::move(*link);
  return {};
}

std::shared_ptr<Link> link() {
  std::lock_guard lock(g_mu);
  return g_link;
}

void shutdown() {
  std::shared_ptr<Link> last;
  {
    std::lock_guard lock(g_mu);
    last = std::move(g_link);
  }
  last.reset();
  nats_CloseAndWait(2000);
}

}  // namespace evrouted::nats
