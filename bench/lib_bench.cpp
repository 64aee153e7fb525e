// Library benchmarks, in the shapes of docker/go-events' (issue 15; bench/go-events/ measures the
// Go side the same way, bench/compare.sh runs both, see bench/README.md):
//  (a) BM_Broadcast/N: Broadcaster fan-out to N = 1, 4, 16 no-op sinks, per write
//  (b) BM_QueueWriteThenDrain: Queue: write 100,000 events, then close (which drains them) into a
//      no-op sink
//  (c) BM_GoEventsChain/4: go-events' own composition, Broadcaster -> 4 x (Queue -> Filter ->
//      Retrying(Breaker) -> no-op): write 100,000, close; and BM_DaemonChain/K, the daemon's chain,
//      Broadcaster -> K x (Filter -> Queue -> Retrying(Backoff) -> no-op), the same way
//  (d) BM_PendingMemory: resident memory with 1,000,000 pending 200-byte events in a Queue whose
//      destination is blocked
// Each iteration of (b) and (c) is 100,000 events: divide its time by 100,000 for ns per event.
// BM_QueueProducerAlone and BM_QueueDrainAlone time (b)'s producer and worker each on its own.
// BM_HostControl and BM_HostMemoryControl are no evroute code: a fixed loop on every core, and a
// fixed walk of two threads over 27 MB of cache lines, whose times change only when the machine's
// speed (its cores', or its memory's and caches') does, so that compare.sh can tell a host that
// swings from a benchmark that does.
#include <benchmark/benchmark.h>
#include <evroute/evroute.h>

#include <unistd.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

class NoopSink final : public evroute::Sink {
 public:
  evroute::Status write(const evroute::Event&) override { return evroute::Status::ok(); }
  evroute::Status close() override { return evroute::Status::ok(); }
};

// Blocks every write until closed: a dead destination.
class BlockedSink final : public evroute::Sink {
 public:
  evroute::Status write(const evroute::Event&) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_; });
    return evroute::Status::closed();
  }
  evroute::Status close() override {
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
    cv_.notify_all();
    return evroute::Status::ok();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
};

// A 200-byte JSON payload, like a small webhook event.
std::string payload_200() {
  std::string p = R"({"type":"order.created","customer":"c-123456","amount":1999,"pad":")";
  p.append(200 - p.size() - 2, 'x');
  p += "\"}";
  return p;
}

// N distinct events with UUID-sized ids (each its own allocation, as in the daemon).
const std::vector<evroute::Event>& events(std::size_t n) {
  static std::vector<evroute::Event> pool;
  if (pool.size() < n) {
    const std::string payload = payload_200();
    for (std::size_t i = pool.size(); i < n; ++i) {
      char id[40];
      std::snprintf(id, sizeof id, "018f3a2b-0000-7000-8000-%012zx", i);
      pool.push_back(evroute::Event::make(id, payload, {{"type", "order.created"}}));
    }
  }
  return pool;
}

void BM_Broadcast(benchmark::State& state) {
  std::vector<std::shared_ptr<evroute::Sink>> sinks;
  for (int i = 0; i < state.range(0); ++i) sinks.push_back(std::make_shared<NoopSink>());
  evroute::Broadcaster b(sinks);
  const auto& evs = events(1024);
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(b.write(evs[i++ & 1023]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Broadcast)->Arg(1)->Arg(4)->Arg(16);

constexpr std::size_t kBatch = 100000;

void BM_QueueWriteThenDrain(benchmark::State& state) {
  const auto& evs = events(kBatch);
  std::uint64_t wakeups = 0;
  for (auto _ : state) {
    evroute::Queue q(std::make_shared<NoopSink>(), evroute::Queue::Options{.capacity = 0});
    for (const auto& e : evs) benchmark::DoNotOptimize(q.write(e));
    q.close();
    wakeups += q.stats().wakeups;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  // Times a producer woke the parked worker, per 100,000 events.
  state.counters["wakeups"] =
      benchmark::Counter(static_cast<double>(wakeups), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_QueueWriteThenDrain)->Unit(benchmark::kMillisecond)->UseRealTime();

// Holds the first write until opened; every write after that returns at once.
class GateSink final : public evroute::Sink {
 public:
  evroute::Status write(const evroute::Event&) override {
    if (!opened_.load(std::memory_order_acquire)) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return opened_.load(std::memory_order_relaxed); });
    }
    return evroute::Status::ok();
  }
  evroute::Status close() override { return evroute::Status::ok(); }
  void open() {
    {
      std::lock_guard<std::mutex> g(mu_);
      opened_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> opened_{false};
};

// (b)'s two halves, each on its own: the producer's 100,000 writes while the worker is held
// (BM_QueueProducerAlone), and the worker draining them with no producer beside it, from the
// gate's opening to close()'s return (BM_QueueDrainAlone). Not in compare.sh: they tell which
// half of (b) a change or a host moves.
void queue_halves(benchmark::State& state, bool producer_half) {
  const auto& evs = events(kBatch);
  for (auto _ : state) {
    auto gate = std::make_shared<GateSink>();
    evroute::Queue q(gate, evroute::Queue::Options{.capacity = 0});
    const auto start = std::chrono::steady_clock::now();
    for (const auto& e : evs) benchmark::DoNotOptimize(q.write(e));
    const auto written = std::chrono::steady_clock::now();
    gate->open();
    q.close();
    const auto drained = std::chrono::steady_clock::now();
    state.SetIterationTime(
        std::chrono::duration<double>(producer_half ? written - start : drained - written).count());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
void BM_QueueProducerAlone(benchmark::State& state) { queue_halves(state, true); }
void BM_QueueDrainAlone(benchmark::State& state) { queue_halves(state, false); }
BENCHMARK(BM_QueueProducerAlone)->Unit(benchmark::kMillisecond)->UseManualTime();
BENCHMARK(BM_QueueDrainAlone)->Unit(benchmark::kMillisecond)->UseManualTime();

// Writes kBatch events through a Broadcaster to state.range(0) sinks made by `make_chain`, then
// closes the Broadcaster, which drains every chain.
template <class MakeChain>
void write_through_chains(benchmark::State& state, MakeChain make_chain) {
  const auto& evs = events(kBatch);
  for (auto _ : state) {
    evroute::Broadcaster b;
    for (int i = 0; i < state.range(0); ++i) b.add(make_chain());
    for (const auto& e : evs) benchmark::DoNotOptimize(b.write(e));
    b.close();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

bool is_order(const evroute::Event& e) { return e.type().starts_with("order."); }

// The daemon's own chain: Filter -> Queue -> Retrying(Backoff) -> no-op.
void BM_DaemonChain(benchmark::State& state) {
  write_through_chains(state, [] {
    auto retrying = std::make_shared<evroute::Retrying>(
        std::make_shared<NoopSink>(),
        std::make_shared<evroute::ExponentialBackoff>(evroute::ExponentialBackoff::Options{}),
        evroute::Retrying::Options{});
    auto queue = std::make_shared<evroute::Queue>(retrying, evroute::Queue::Options{.capacity = 0});
    return std::make_shared<evroute::Filter>(queue, is_order);
  });
}
BENCHMARK(BM_DaemonChain)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();

// go-events' exact composition for (c), as bench/go-events/ builds it with go-events' types: each
// sink a Queue in front of a Filter in front of a Retrying with a Breaker (threshold 10, cooldown
// 1 s; the registry's defaults), retrying without a bound as go-events' RetryingSink does.
void BM_GoEventsChain(benchmark::State& state) {
  write_through_chains(state, [] {
    auto retrying = std::make_shared<evroute::Retrying>(
        std::make_shared<NoopSink>(),
        std::make_shared<evroute::Breaker>(10, std::chrono::seconds(1)),
        evroute::Retrying::Options{.max_attempts = 0});
    auto filter = std::make_shared<evroute::Filter>(retrying, is_order);
    return std::make_shared<evroute::Queue>(filter, evroute::Queue::Options{.capacity = 0});
  });
}
BENCHMARK(BM_GoEventsChain)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Runs once: builds 1,000,000 events and queues them behind a blocked destination.
void BM_PendingMemory(benchmark::State& state) {
  constexpr std::size_t kPending = 1000000;
  const std::string payload = payload_200();
  for (auto _ : state) {
    const long before = rss_bytes();
    auto queue = std::make_shared<evroute::Queue>(std::make_shared<BlockedSink>(),
                                                  evroute::Queue::Options{.capacity = 0});
    for (std::size_t i = 0; i < kPending; ++i) {
      char id[40];
      std::snprintf(id, sizeof id, "018f3a2b-0000-7000-8000-%012zx", i);
      queue->write(evroute::Event::make(id, payload));
    }
    const long after = rss_bytes();
    state.counters["rss_MB"] = static_cast<double>(after) / 1e6;
    state.counters["growth_MB"] = static_cast<double>(after - before) / 1e6;
    state.counters["overhead_B_per_event"] =
        static_cast<double>(after - before) / kPending - static_cast<double>(payload.size());
    state.PauseTiming();
    queue->close_until(std::chrono::steady_clock::now());
    state.ResumeTiming();
  }
}
BENCHMARK(BM_PendingMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

// A chain of 1,000,000 dependent multiply-adds: a fixed amount of work, no memory, on every core
// at once (one thread per CPU; Google Benchmark reports their average per iteration, so a slow
// core shows), since (b) and (c) need every core.
void BM_HostControl(benchmark::State& state) {
  std::uint64_t x = 1;
  for (auto _ : state) {
    for (int i = 0; i < 1000000; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      benchmark::DoNotOptimize(x);
    }
  }
}
BENCHMARK(BM_HostControl)->Unit(benchmark::kMicrosecond)->UseRealTime()->ThreadPerCpu();

// The host's memory and the path between its cores, as (b) uses them, and no evroute code: a
// thread increments one word in each of 100,000 cache lines 272 bytes apart (27 MB, as (b)'s
// events' reference counts are), publishing its progress every 64; a second thread, started per
// iteration as a Queue's worker is, follows and decrements each (as the worker releases them).
// BM_HostControl only computes: it does not see a host whose caches or memory are shared with
// busy neighbours, and this does.
void BM_HostMemoryControl(benchmark::State& state) {
  constexpr std::size_t kLines = 100000, kStride = 272;
  std::vector<std::atomic<int>> words(kLines * kStride / sizeof(std::atomic<int>));
  auto word = [&](std::size_t i) -> std::atomic<int>& {
    return words[i * kStride / sizeof(std::atomic<int>)];
  };
  for (auto _ : state) {
    std::atomic<std::size_t> published{0};
    std::thread follower([&] {
      for (std::size_t done = 0; done < kLines;) {
        const std::size_t upto = published.load(std::memory_order_acquire);
        if (upto == done) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
          continue;
        }
        for (; done < upto; ++done) word(done).fetch_sub(1, std::memory_order_relaxed);
      }
    });
    for (std::size_t i = 0; i < kLines; ++i) {
      word(i).fetch_add(1, std::memory_order_relaxed);
      if (i % 64 == 63 || i + 1 == kLines) published.store(i + 1, std::memory_order_release);
    }
    follower.join();
  }
}
BENCHMARK(BM_HostMemoryControl)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
