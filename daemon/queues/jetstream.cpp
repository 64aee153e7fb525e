// queue.type: jetstream — see jetstream.h.
#include "queues/jetstream.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "log_throttle.h"
#include "nats/event_codec.h"
#include "nats/link.h"
#include "queues/jetstream_dead_letters.h"

namespace evrouted {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class JetStreamQueue final : public evroute::SinkQueue {
 public:
  JetStreamQueue(std::shared_ptr<nats::Link> link, const QueueParts& parts)
      : link_(std::move(link)),
        sink_(parts.sink.name),
        subject_(link_->queue_subject(sink_)),
        queue_(parts.sink.queue),
        retry_(parts.sink.retry),
        backoff_(parts.sink.retry.backoff()),
        attempt_(parts.attempt),
        dead_letters_(parts.dead_letters),
        workers_(std::max(1u, parts.delivery.concurrency)) {}

  ~JetStreamQueue() override { close_until(Clock::now()); }

  void start() {
    for (unsigned i = 0; i < workers_; ++i) threads_.emplace_back([this] { work(); });
    keeper_ = std::thread([this] { keep_leases(); });
  }

  evroute::Status write(const evroute::Event& event) override { return write_all({&event, 1}); }
  evroute::Status write_all(std::span<const evroute::Event> events) override {
    return publish(events, false);
  }
  evroute::Status requeue(std::span<const evroute::Event> events) override {
    return publish(events, true);
  }

  bool stored() const override { return true; }
  evroute::Status health() const override { return link_->ready(); }
  evroute::Status close() override {
    close_until(Clock::now() + std::chrono::seconds(5));
    return {};
  }

  CloseReport close_until(Clock::time_point deadline) override {
    std::unique_lock lock(mu_);
    if (closed_) return report_;
    closed_ = true;
    stopping_ = true;
    cv_.notify_all();
    // Deliveries in progress may finish until the deadline; then the destination is closed, which
    // ends them (their events are given back).
    if (!cv_.wait_until(lock, deadline, [&] { return delivering_ == 0; })) {
      report_.timed_out = true;
      lock.unlock();
      attempt_->close();
      lock.lock();
    }
    lock.unlock();
    for (std::thread& t : threads_) t.join();
    if (keeper_.joinable()) keeper_.join();
    attempt_->close();
    lock.lock();
    report_.kept = given_back_;
    return report_;
  }

  Stats stats() const override {
    std::lock_guard lock(mu_);
    Stats s = stats_;
    return s;
  }

 private:
  evroute::Status publish(std::span<const evroute::Event> events, bool again) {
    if (events.empty()) return {};
    {
      std::lock_guard lock(mu_);
      if (closed_) return evroute::Status::closed("sink '" + sink_ + "': its queue is closed");
    }
    std::vector<nats::MsgPtr> msgs;
    msgs.reserve(events.size());
    const std::string suffix =
        again ? "/replay/" +
                    std::to_string(std::chrono::system_clock::now().time_since_epoch().count())
              : "";
    for (const evroute::Event& e : events) {
      const std::string data = nats::encode_event(e);
      natsMsg* raw = nullptr;
      if (natsMsg_Create(&raw, subject_.c_str(), nullptr, data.data(),
                         static_cast<int>(data.size())) != NATS_OK) {
        return evroute::Status::unavailable("cannot build a NATS message");
      }
      nats::MsgPtr msg(raw);
      const std::string id = sink_ + "/" + std::string(e.id()) + suffix;
      natsMsgHeader_Set(msg.get(), "Nats-Msg-Id", id.c_str());
      msgs.push_back(std::move(msg));
    }
    evroute::Status s = link_->publish(std::move(msgs), link_->config().publish_timeout);
    if (!s.is_ok()) {
      return evroute::Status::unavailable("sink '" + sink_ + "': " + s.message())
          .with_retry_after(std::chrono::seconds(1));
    }
    std::lock_guard lock(mu_);
    stats_.enqueued += events.size();
    return s;
  }

  // Creates (or updates) the durable consumer and binds a pull subscription to it.
  natsSubscription* subscribe() {
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    const std::string consumer = jetstream_consumer(sink_);
    cc.Durable = consumer.c_str();
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(queue_.ack_wait).count();
    cc.FilterSubject = subject_.c_str();
    cc.MaxAckPending = workers_ == 1 ? 1 : 1000;
    cc.MaxDeliver = -1;
    cc.DeliverPolicy = js_DeliverAll;
    jsConsumerInfo* info = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_AddConsumer(&info, link_->js(), link_->stream().c_str(), &cc, nullptr, &code);
    if (s != NATS_OK && (code == JSConsumerNameExistErr || code == JSConsumerExistingActiveErr)) {
      code = static_cast<jsErrCode>(0);
      s = js_UpdateConsumer(&info, link_->js(), link_->stream().c_str(), &cc, nullptr, &code);
    }
    if (info) jsConsumerInfo_Destroy(info);
    if (s != NATS_OK) return failed("set up its JetStream consumer", s, code);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = link_->stream().c_str();
    so.Consumer = consumer.c_str();
    natsSubscription* sub = nullptr;
    s = js_PullSubscribe(&sub, link_->js(), subject_.c_str(), consumer.c_str(), nullptr, &so,
                         &code);
    if (s != NATS_OK) return failed("pull from its JetStream consumer", s, code);
    return sub;
  }
  // Logs (throttled) that subscribe() could not `what`; null.
  natsSubscription* failed(std::string_view what, natsStatus s, jsErrCode code) {
    if (warn_.allow()) {
      spdlog::error("sink '{}': cannot {}: {}", sink_, what, nats::describe(s, code));
    }
    return nullptr;
  }

  // Waits `d`, or less when the queue closes; returns whether it is closing.
  bool pause(milliseconds d) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [&] { return stopping_; });
  }
  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void work() {
    natsSubscription* sub = nullptr;
    std::uint64_t generation = 0;
    const int batch = workers_ == 1 ? 1 : 16;
    while (!stopping()) {
      if (!sub || generation != link_->generation()) {
        if (sub) natsSubscription_Destroy(sub);
        sub = nullptr;
        if (!link_->wait_ready(Clock::now() + milliseconds(200))) {
          if (stopping()) break;
          continue;
        }
        generation = link_->generation();
        if (!(sub = subscribe())) {
          if (pause(milliseconds(1000))) break;
          continue;
        }
      }
      natsMsgList list{nullptr, 0};
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus s = natsSubscription_Fetch(&list, sub, batch, 1000, &code);
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        if (warn_.allow()) {
          spdlog::warn("sink '{}': pulling from JetStream failed: {}", sink_,
                       nats::describe(s, code));
        }
        natsSubscription_Destroy(sub);
        sub = nullptr;
        if (pause(milliseconds(500))) break;
        continue;
      }
      deliver_all(list);
      natsMsgList_Destroy(&list);
    }
    if (sub) natsSubscription_Destroy(sub);
  }

  // Delivers the fetched messages in order; the keeper extends the lease of every one held.
  void deliver_all(natsMsgList& list) {
    {
      std::lock_guard lock(mu_);
      for (int i = 0; i < list.Count; ++i) held_.insert(list.Msgs[i]);
      ++delivering_;
    }
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* msg = list.Msgs[i];
      if (stopping()) {
        give_back(msg);
      } else {
        deliver(msg);
      }
      std::lock_guard lock(mu_);
      held_.erase(msg);
    }
    {
      std::lock_guard lock(mu_);
      --delivering_;
    }
    cv_.notify_all();
  }

  void give_back(natsMsg* msg) {
    natsMsg_Nak(msg, nullptr);
    std::lock_guard lock(mu_);
    ++given_back_;
  }

  void deliver(natsMsg* msg) {
    jsMsgMetaData* meta = nullptr;
    std::uint64_t attempt = 1;
    std::int64_t stored_ns = 0;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      attempt = std::max<std::uint64_t>(1, meta->NumDelivered);
      stored_ns = meta->Timestamp;
      jsMsgMetaData_Destroy(meta);
    }
    const std::string_view data(natsMsg_GetData(msg),
                                static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    std::optional<evroute::Event> event = nats::decode_event(data);
    if (!event) {
      const std::string id = "undecodable-" + std::to_string(natsMsg_GetSequence(msg));
      give_up(msg, evroute::Event::make(id, "null"),
              evroute::Status::rejected("the JetStream message is not an event evrouted stored"),
              attempt);
      return;
    }
    evroute::Status s;
    try {
      s = attempt_->write(*event);
    } catch (const std::exception& e) {
      s = evroute::Status::rejected(std::string("the destination threw: ") + e.what());
    }
    if (s.is_ok()) {
      natsMsg_Ack(msg, nullptr);
      std::lock_guard lock(mu_);
      ++stats_.delivered;
      return;
    }
    if (s.code() == evroute::Code::kClosed) return give_back(msg);  // closing: another run's
    {
      std::lock_guard lock(mu_);
      ++stats_.failed;
    }
    const bool attempts_left = retry_.max_attempts == 0 || attempt < retry_.max_attempts;
    const bool time_left =
        retry_.max_elapsed.count() == 0 ||
        std::chrono::nanoseconds(std::chrono::system_clock::now().time_since_epoch().count() -
                                 stored_ns) < retry_.max_elapsed;
    if (!s.is_retryable() || !attempts_left || !time_left) return give_up(msg, *event, s, attempt);
    milliseconds delay;
    {
      std::lock_guard lock(mu_);
      // From the attempt number alone: any replica may make the next attempt.
      delay = std::chrono::duration_cast<milliseconds>(evroute::ExponentialBackoff::delay_for(
          backoff_, static_cast<std::uint32_t>(std::min<std::uint64_t>(attempt, UINT32_MAX)),
          rng_()));
      ++stats_.naks;
    }
    if (s.retry_after().count() > 0) {
      delay = std::max(delay, std::min(s.retry_after(), std::chrono::duration_cast<milliseconds>(
                                                            retry_.max_retry_after)));
    }
    spdlog::warn("sink '{}': attempt {} for event {} failed ({}); retrying in {} ms", sink_,
                 attempt, event->id(), s.to_string(), delay.count());
    natsMsg_NakWithDelay(msg, delay.count(), nullptr);
  }

  void give_up(natsMsg* msg, const evroute::Event& event, const evroute::Status& last,
               std::uint64_t attempts) {
    const evroute::Status written =
        dead_letters_->add(event, last, static_cast<std::uint32_t>(attempts));
    if (!written.is_ok()) {
      spdlog::error(
          "sink '{}': gave up on event {} after {} attempt(s): {}; and could not dead-letter it "
          "({}): it stays in the stream and is tried again",
          sink_, event.id(), attempts, last.to_string(), written.to_string());
      natsMsg_NakWithDelay(
          msg, std::chrono::duration_cast<milliseconds>(retry_.max_backoff).count(), nullptr);
      return;
    }
    spdlog::error("sink '{}': gave up on event {} after {} attempt(s): {}; dead-lettered to {}",
                  sink_, event.id(), attempts, last.to_string(), dead_letters_->where());
    natsMsg_Term(msg, nullptr);
    std::lock_guard lock(mu_);
    ++stats_.terminated;
    ++stats_.dead_lettered;
  }

  // Every ack_wait/3: in-progress acks for the messages held, and the consumer's counts.
  void keep_leases() {
    const auto every = std::max<milliseconds>(
        milliseconds(200), std::chrono::duration_cast<milliseconds>(queue_.ack_wait) / 3);
    auto next_info = Clock::now();
    std::unique_lock lock(mu_);
    while (!stopping_) {
      cv_.wait_for(lock, std::min(every, milliseconds(1000)), [&] { return stopping_; });
      if (stopping_) break;
      const auto now = Clock::now();
      if (now >= last_lease_ + every) {
        for (natsMsg* m : held_) natsMsg_InProgress(m, nullptr);
        last_lease_ = now;
      }
      if (now < next_info) continue;
      next_info = now + std::chrono::seconds(1);
      lock.unlock();
      refresh_counts();
      lock.lock();
    }
  }

  void refresh_counts() {
    if (!link_->ready().is_ok()) return;
    auto consumer = read_jetstream_consumer(*link_, sink_);
    if (!consumer.ok() || !*consumer) return;
    const JetStreamConsumerState& c = **consumer;
    std::lock_guard lock(mu_);
    stats_.pending = c.pending + c.ack_pending;
    stats_.ack_pending = c.ack_pending;
    stats_.redelivered = c.redelivered;
    stats_.high_water = std::max(stats_.high_water, stats_.pending);
  }

  const std::shared_ptr<nats::Link> link_;
  const std::string sink_;
  const std::string subject_;
  const QueueConfig queue_;
  const RetryConfig retry_;
  const evroute::ExponentialBackoff::Options backoff_;
  const std::shared_ptr<evroute::Sink> attempt_;
  const std::shared_ptr<DeadLetterStore> dead_letters_;
  const unsigned workers_;
  LogThrottle warn_{std::chrono::seconds(10)};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool closed_ = false;
  int delivering_ = 0;
  std::uint64_t given_back_ = 0;
  std::set<natsMsg*> held_;
  Clock::time_point last_lease_ = Clock::now();
  Stats stats_;
  CloseReport report_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::vector<std::thread> threads_;
  std::thread keeper_;
};

evroute::Result<std::shared_ptr<evroute::SinkQueue>> open_jetstream_queue(const QueueParts& parts) {
  std::shared_ptr<nats::Link> link = nats::link();
  if (!link) {
    return evroute::Status::unavailable("sink '" + parts.sink.name +
                                        "': a jetstream queue needs the 'nats' section");
  }
  link->require_streams();
  auto queue = std::make_shared<JetStreamQueue>(link, parts);
  queue->start();
  spdlog::info("sink '{}': jetstream queue on {} (consumer {}, ack_wait {} s)", parts.sink.name,
               link->queue_subject(parts.sink.name), jetstream_consumer(parts.sink.name),
               std::chrono::duration_cast<std::chrono::seconds>(parts.sink.queue.ack_wait).count());
  return std::shared_ptr<evroute::SinkQueue>(std::move(queue));
}

class JetStreamKind final : public QueueKind {
 public:
  QueueConfig::Type type() const override { return QueueConfig::Type::kJetStream; }
  std::string_view name() const override { return "jetstream"; }

  evroute::Result<std::shared_ptr<evroute::SinkQueue>> open(
      const QueueParts& parts) const override {
    return open_jetstream_queue(parts);
  }
  // The old queue stops pulling and gives back what it held; the new one pulls from the same
  // consumer, updated to the new settings.
  evroute::Result<std::shared_ptr<evroute::SinkQueue>> take_over(
      evroute::SinkQueue& old, DropLog&, const QueueParts& next,
      std::atomic<std::uint64_t>*) const override {
    old.close_until(Clock::now());
    return open_jetstream_queue(next);
  }
  std::shared_ptr<DeadLetterStore> open_dead_letters(const SinkConfig& sink,
                                                     const std::string& data_dir) const override {
    if (std::shared_ptr<nats::Link> link = nats::link()) {
      return std::make_shared<JetStreamDeadLetters>(std::move(link), sink.name);
    }
    return QueueKind::open_dead_letters(sink, data_dir);
  }

  std::vector<std::pair<std::string_view, std::uint64_t>> fields(
      const QueueConfig& config, const evroute::SinkQueue::Stats& stats) const override {
    return {{"ack_wait_ms", whole_ms(config.ack_wait)},
            {"pending", stats.pending},
            {"ack_pending", stats.ack_pending},
            {"redelivered", stats.redelivered},
            {"naks", stats.naks},
            {"terminated", stats.terminated}};
  }
  std::uint64_t capacity(const QueueConfig&) const override { return 0; }
  bool retries_itself() const override { return true; }
  std::string_view kept_until() const override {
    return "delivered by another replica, or after the next start";
  }

  // Counts, per sink subject of the stream, the events waiting for a sink that is not configured
  // with a jetstream queue (removed, or moved to another kind).
  void warn_orphaned(const Config& config) const override {
    std::shared_ptr<nats::Link> link = nats::link();
    if (!link || !link->wait_ready(Clock::now() + std::chrono::seconds(3))) return;
    auto stream = read_jetstream_stream(*link);
    if (!stream.ok() || !*stream) return;
    for (const auto& [subject_sink, messages] : (*stream)->per_sink) {
      const std::string& name = subject_sink;  // a lambda cannot capture a structured binding
      const bool used =
          std::any_of(config.sinks.begin(), config.sinks.end(), [&](const SinkConfig& sc) {
            return sc.name == name && sc.queue.type == QueueConfig::Type::kJetStream;
          });
      if (used || messages == 0) continue;
      spdlog::warn(
          "JetStream stream {} holds {} undelivered event(s) of sink '{}' (subject {}), which is "
          "not configured with a jetstream queue: they wait until it is again",
          link->stream(), messages, name, link->queue_subject(name));
    }
  }
};

}  // namespace

const QueueKind& jetstream_queue_kind() {
  static const JetStreamKind kind;
  return kind;
}

std::string jetstream_consumer(std::string_view sink) { return std::string(sink); }

evroute::Result<std::optional<JetStreamStreamState>> read_jetstream_stream(const nats::Link& link) {
  jsOptions o;
  jsOptions_Init(&o);
  const std::string prefix = nats::queue_subject(link.stream(), "");
  const std::string filter = prefix + ">";
  o.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&info, link.js(), link.stream().c_str(), &o, &code);
  if (s != NATS_OK) {
    if (code == JSStreamNotFoundErr) return std::optional<JetStreamStreamState>();
    return evroute::Status::unavailable("stream " + link.stream() + ": " + nats::describe(s, code));
  }
  JetStreamStreamState state;
  state.messages = info->State.Msgs;
  state.bytes = info->State.Bytes;
  state.first_seq = info->State.FirstSeq;
  state.last_seq = info->State.LastSeq;
  state.first_time_ns = info->State.FirstTime;
  state.last_time_ns = info->State.LastTime;
  for (int i = 0; info->State.Subjects && i < info->State.Subjects->Count; ++i) {
    const jsStreamStateSubject& subject = info->State.Subjects->List[i];
    const std::string_view name = subject.Subject;
    if (name.starts_with(prefix)) {
      state.per_sink[std::string(name.substr(prefix.size()))] = subject.Msgs;
    }
  }
  jsStreamInfo_Destroy(info);
  return std::optional<JetStreamStreamState>(std::move(state));
}

evroute::Result<std::optional<JetStreamConsumerState>> read_jetstream_consumer(
    const nats::Link& link, std::string_view sink) {
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const std::string consumer = jetstream_consumer(sink);
  const natsStatus s =
      js_GetConsumerInfo(&info, link.js(), link.stream().c_str(), consumer.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    if (code == JSConsumerNotFoundErr || code == JSStreamNotFoundErr) {
      return std::optional<JetStreamConsumerState>();
    }
    return evroute::Status::unavailable("consumer " + consumer + ": " + nats::describe(s, code));
  }
  JetStreamConsumerState state;
  state.pending = info->NumPending;
  state.ack_pending = static_cast<std::uint64_t>(std::max<std::int64_t>(0, info->NumAckPending));
  state.redelivered = static_cast<std::uint64_t>(std::max<std::int64_t>(0, info->NumRedelivered));
  state.delivered_seq = info->Delivered.Stream;
  state.ack_floor_seq = info->AckFloor.Stream;
  jsConsumerInfo_Destroy(info);
  return std::optional<JetStreamConsumerState>(std::move(state));
}

}  // namespace evrouted
