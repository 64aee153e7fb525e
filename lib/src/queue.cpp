#include "evroute/queue.h"

#include "batch_bound.h"
#include "deadline.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

namespace evroute {

// How it works: producers append events to a segmented FIFO under pmu_ and publish them with the
// exchange that releases pmu_ (the lock and the published count share a word), once per write()
// or write_all() call (two locked instructions per write besides the event's reference count);
// workers take them under cmu_, up to max_batch with one worker, one with several, a batch when
// batching, and deliver them without a lock. The two sides share no lock on the hot path: a
// producer reads the workers' counters (finished_, through a copy it refreshes only when the
// queue looks full or at a new high by it; how many workers are idle or lingering) through
// atomics and takes cmu_ only to wake a parked or lingering worker, or to evict the oldest event
// (kDropOldest). A worker parks with idle_workers_ raised and then looks for events once more, a
// producer publishes and then (after releasing pmu_) reads idle_workers_ (both sequentially
// consistent), so one of them always sees the other: no event is left waiting for a
// worker that sleeps. pending = published - finished_ counts the events being delivered too, so
// the capacity bound includes them. Room for blocked writers is signalled the same way
// (writers_waiting_ against finished_), under room_mu_. Dropped and undelivered events go to the
// dead-letter sink with no lock held. A worker that runs out of events may spin before it parks
// (see "Wake-ups" in queue.h): it watches the published count, and while it spins (spinners_) the
// producers do not wake it.

namespace {

using internal::batch_bytes;
using internal::deadline_after;

Status closed_status() { return Status::closed("queue is closed"); }

// Tells the core that this is a spin-wait loop (saves power, yields to the sibling hyperthread).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A worker's moving average (0..max) of how often waiting would have paid: one eighth of the way
// towards max when it did, towards 0 when not.
void learn(int& score, int max, bool paid) { score += ((paid ? max : 0) - score) / 8; }

// A core to wait busily on (a spinning or settling worker), while held. Busy waiters over every
// queue in the process: at most a quarter of the cores (none below four), so that producers and
// the workers of other queues keep theirs: on two cores a spinning worker took half the machine
// from its producer, and settling busily a quarter of it (bench/README.md, issue 15); dozing
// instead delivered more, and more steadily.
class SpinSlot {
 public:
  SpinSlot() : held_(busy().fetch_add(1, std::memory_order_relaxed) < most()) {
    if (!held_) busy().fetch_sub(1, std::memory_order_relaxed);
  }
  SpinSlot(const SpinSlot&) = delete;
  SpinSlot& operator=(const SpinSlot&) = delete;
  ~SpinSlot() { release(); }
  explicit operator bool() const { return held_; }
  void release() {
    if (std::exchange(held_, false)) busy().fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  static std::atomic<unsigned>& busy() {
    static std::atomic<unsigned> busy{0};
    return busy;
  }
  static unsigned most() {
    static const unsigned most = std::thread::hardware_concurrency() / 4;
    return most;
  }
  bool held_;
};

}  // namespace

// A FIFO of events in fixed-size segments (a segment is 2 KiB: 255 events and a link). One
// producer at a time appends (pmu_), one consumer at a time takes (cmu_); they meet only at the
// published count (in pmu_'s word; sequentially consistent: see above), the link to the next
// segment, and a spare segment handed back for reuse, so a steady flow allocates nothing.
class Queue::Fifo {
 public:
  explicit Fifo(const ProducerLock& published)
      : head_(new Segment), tail_(head_), lock_(published) {}
  Fifo(const Fifo&) = delete;
  Fifo& operator=(const Fifo&) = delete;
  ~Fifo() {
    for (Segment* s = head_; s != nullptr;) {
      Segment* next = s->next.load(std::memory_order_relaxed);
      delete s;
      s = next;
    }
    delete spare_.load(std::memory_order_relaxed);
  }

  // Producer side (pmu_ held).
  void append(const Event& event) {
    if (tail_used_ == kSlots) {
      Segment* fresh = spare_.exchange(nullptr, std::memory_order_acquire);
      if (fresh == nullptr) fresh = new Segment;
      tail_->next.store(fresh, std::memory_order_release);
      tail_ = fresh;
      tail_used_ = 0;
    }
    tail_->slots[tail_used_++] = event;
    ++appended_;
  }
  std::uint64_t appended() const { return appended_; }

  // Anyone.
  std::uint64_t published() const { return lock_.published(); }
  std::uint64_t taken() const { return taken_.load(std::memory_order_acquire); }

  // Consumer side (cmu_ held).
  std::uint64_t available() const { return published() - taken_.load(std::memory_order_relaxed); }
  const Event& front() {  // available() > 0
    step();
    return head_->slots[head_used_];
  }
  Event pop() {  // available() > 0
    step();
    Event event = std::move(head_->slots[head_used_++]);
    taken_.store(taken_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    return event;
  }

 private:
  static constexpr std::size_t kSlots = 255;
  struct Segment {
    Event slots[kSlots];
    std::atomic<Segment*> next{nullptr};
  };
  // Moves to the next segment when the head one is used up (it exists: the producer links it
  // before it appends to it, and publishes after); the used one becomes the spare.
  void step() {
    if (head_used_ < kSlots) return;
    Segment* used = head_;
    head_ = used->next.load(std::memory_order_acquire);
    head_used_ = 0;
    used->next.store(nullptr, std::memory_order_relaxed);
    delete spare_.exchange(used, std::memory_order_acq_rel);
  }

  alignas(64) Segment* head_;  // consumer's
  std::size_t head_used_ = 0;
  alignas(64) Segment* tail_;  // producer's
  std::size_t tail_used_ = 0;
  std::uint64_t appended_ = 0;  // producer's
  const ProducerLock& lock_;    // the published count: events [0, published) may be taken
  alignas(64) std::atomic<std::uint64_t> taken_{0};
  alignas(64) std::atomic<Segment*> spare_{nullptr};
};

void Queue::ProducerLock::lock_contended() noexcept {
  for (int i = 0; i < 64; ++i) {  // holds are short: the holder is likely done soon
    cpu_relax();
    if ((word_.load(std::memory_order_relaxed) & kHeld) == 0 &&
        (word_.fetch_or(kHeld, std::memory_order_acquire) & kHeld) == 0) {
      return;
    }
  }
  // Taken from here with kSleepers set, whether or not others sleep (they may): its release
  // then wakes the next one. Only a release changes the word while it is held (the count changes
  // under the lock), so a wait for the held value ends at the release.
  for (;;) {
    const std::uint64_t before = word_.fetch_or(kHeld | kSleepers, std::memory_order_acquire);
    if ((before & kHeld) == 0) return;
    word_.wait(before | kHeld | kSleepers, std::memory_order_relaxed);
  }
}

// std::unique_lock's view of pmu_ for the producers: unlocking publishes what they appended
// (with its bytes) in the releasing exchange.
class Queue::Producers {
 public:
  explicit Producers(Queue& queue) : queue_(queue) {}
  void lock() noexcept { queue_.pmu_.lock(); }
  void unlock() noexcept {
    queue_.publish_bytes_locked();
    queue_.pmu_.unlock_publishing(queue_.fifo_->appended());
  }

 private:
  Queue& queue_;
};

Queue::Queue(std::shared_ptr<Sink> destination, Options options)
    : destination_(std::move(destination)),
      options_(std::move(options)),
      batch_destination_(
          destination_ && options_.batch.max_events > 1 ? destination_->as_batch_sink() : nullptr),
      clock_(options_.clock ? options_.clock : Clock::system()),
      counts_bytes_(batch_destination_ != nullptr && options_.batch.max_bytes > 0),
      fifo_(std::make_unique<Fifo>(pmu_)) {
  if (!destination_) throw std::invalid_argument("Queue: null destination");
  if (options_.max_batch == 0) throw std::invalid_argument("Queue: max_batch must be > 0");
  if (options_.workers == 0) throw std::invalid_argument("Queue: workers must be > 0");
  if (options_.batch.max_events > 1 && !batch_destination_) {
    throw std::invalid_argument("Queue: batching needs a BatchSink destination");
  }
  for (std::size_t i = 0; i < options_.workers; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& w : workers_) w->thread = std::thread([this, &w = *w] { run(w); });
}

Queue::~Queue() { close(); }

Status Queue::write(const Event& event) {
  // One event with room for it (or no bound): appended and published in one hold of the
  // producers' lock, without write_all's loop and dead-letter list. Otherwise write_all decides
  // (an empty event, a queue that looks full: its overflow policy).
  if (!event) return write_all(std::span<const Event>(&event, 1));
  bool appended = false;
  {
    Producers producers(*this);
    std::lock_guard<Producers> lock(producers);
    if (closing_.load(std::memory_order_relaxed)) return closed_status();
    // As admit_locked's first look: finished_seen_ overcounts what is pending, never under.
    const std::size_t cap = options_.capacity;
    if (cap == 0 || fifo_->appended() - finished_seen_ < cap) {
      enqueue_locked(event);
      appended = true;
    }
  }  // publishes it
  if (!appended) return write_all(std::span<const Event>(&event, 1));
  wake_for_published();
  return Status::ok();
}

Status Queue::write_all(std::span<const Event> events) {
  std::vector<Event> dropped;  // handed to the dead-letter sink once the lock is released
  Status first;
  {
    Producers producers(*this);
    std::unique_lock<Producers> lock(producers);
    for (const Event& event : events) {
      Status s = admit_locked(event, lock, &dropped);
      if (!s.is_ok() && first.is_ok()) first = std::move(s);
    }
  }  // publishes this call's events
  wake_for_published();
  for (const Event& e : dropped) dead_letter(e);
  return first;
}

std::uint64_t Queue::waiting() const { return fifo_->available(); }

std::uint64_t Queue::pending() const {
  const std::uint64_t finished = finished_.load(std::memory_order_seq_cst);
  return fifo_->published() - finished;
}

bool Queue::has_room(std::size_t n) const { return pending() + n <= options_.capacity; }

Status Queue::admit_locked(const Event& event, std::unique_lock<Producers>& lock,
                           std::vector<Event>* dropped) {
  if (!event) return Status::invalid_argument("empty event");
  if (closing_.load(std::memory_order_relaxed)) return closed_status();
  const std::size_t cap = options_.capacity;
  // Events appended by this call and not published yet are pending too. finished_seen_ is at
  // most finished_, so the first look overcounts: only a queue that looks full by it reads
  // finished_ (a line the workers write) again.
  auto full = [&] {
    if (fifo_->appended() - finished_seen_ < cap) return false;
    finished_seen_ = finished_.load(std::memory_order_seq_cst);
    return fifo_->appended() - finished_seen_ >= cap;
  };
  if (cap > 0 && full()) {
    switch (options_.when_full) {
      case OverflowPolicy::kBlock: {
        // Waiting releases the lock, which publishes the events admitted so far; a worker must
        // be woken for them, or room would never come.
        std::chrono::steady_clock::time_point deadline{};
        const bool timed = options_.block_timeout.count() > 0;
        if (timed) deadline = deadline_after(options_.block_timeout);
        for (;;) {
          lock.unlock();
          wake_for_published();
          await_room(1, timed ? &deadline : nullptr);
          lock.lock();
          if (closing_.load(std::memory_order_relaxed)) return closed_status();
          if (!full()) break;  // room: admit it (another writer may have taken it: wait again)
          if (timed && std::chrono::steady_clock::now() >= deadline) {
            ++produced_.rejected_full;
            return Status::full("queue is full (" + std::to_string(cap) + " pending)");
          }
        }
        break;
      }
      case OverflowPolicy::kDropNewest:
        ++produced_.dropped_newest;
        dropped->push_back(event);
        return Status::ok();
      case OverflowPolicy::kDropOldest: {
        publish_locked();  // this call's earlier events are waiting too: they may be the oldest
        std::lock_guard<std::mutex> consumers(cmu_);
        if (waiting() == 0) {  // every pending event is with the destination already
          ++produced_.dropped_newest;
          dropped->push_back(event);
          return Status::ok();
        }
        ++produced_.dropped_oldest;
        dropped->push_back(fifo_->pop());
        if (counts_bytes_) {
          waiting_bytes_.fetch_sub(batch_bytes(dropped->back()), std::memory_order_relaxed);
        }
        finished_.fetch_add(1, std::memory_order_seq_cst);
        break;
      }
    }
  }
  enqueue_locked(event);
  return Status::ok();
}

Status Queue::adopt(const Event& event) {
  if (!event) return Status::invalid_argument("empty event");
  {
    Producers producers(*this);
    std::lock_guard<Producers> lock(producers);
    if (closing_.load(std::memory_order_relaxed)) return closed_status();
    enqueue_locked(event);
  }  // publishes it
  wake_for_published();
  return Status::ok();
}

void Queue::enqueue_locked(const Event& event) {
  fifo_->append(event);
  if (counts_bytes_) unpublished_bytes_ += batch_bytes(event);
  ++produced_.enqueued;
  // As in admit_locked: finished_ is read again only when the overcount is a new high.
  if (fifo_->appended() - finished_seen_ > produced_.high_water) {
    finished_seen_ = finished_.load(std::memory_order_relaxed);
    const std::uint64_t pending = fifo_->appended() - finished_seen_;
    if (pending > produced_.high_water) produced_.high_water = pending;
  }
}

void Queue::publish_bytes_locked() {
  if (unpublished_bytes_ > 0) {
    waiting_bytes_.fetch_add(std::exchange(unpublished_bytes_, 0), std::memory_order_relaxed);
  }
}

void Queue::publish_locked() {
  publish_bytes_locked();  // first: a worker that sees the events published sees their bytes
  pmu_.publish_held(fifo_->appended());
}

void Queue::wake_for_published() {
  // Sequentially consistent after the publishing exchange: a worker that raised idle_workers_
  // before it is seen here; one that raises it later sees the events when it looks once more. A
  // lingering (or dozing) worker is woken only for a full take (take_now() reads atomics only).
  if (idle_workers_.load(std::memory_order_seq_cst) == 0 &&
      (lingering_workers_.load(std::memory_order_seq_cst) == 0 || !take_now())) {
    return;
  }
  std::vector<Worker*> wake;
  {
    std::lock_guard<std::mutex> lock(cmu_);
    // Spinning workers take the events by themselves; each event more than they will take wakes
    // a parked worker, if there is one. Whoever clears a worker's idle flag wakes it.
    const std::uint64_t waiting = this->waiting();
    const std::uint64_t spinning = spinners_.load(std::memory_order_relaxed);
    std::uint64_t woken = 0;
    for (auto& w : workers_) {
      if (waiting <= spinning + woken) break;
      if (w->idle) {
        set_idle(*w, false);
        ++consumed_.wakeups;
        if (options_.spin.count() > 0 || options_.settle.count() > 0) {
          w->woken_at = std::chrono::steady_clock::now();
        }
        wake.push_back(w.get());
        ++woken;
      }
    }
    // A lingering worker gathers until a full take is waiting (or the queue is full).
    if (wake.empty() && waiting > spinning && take_now()) {
      for (auto& w : workers_) {
        if (w->lingering) {
          set_lingering(*w, false);
          ++consumed_.wakeups;
          wake.push_back(w.get());
          break;
        }
      }
    }
  }
  for (Worker* w : wake) w->wake.notify_one();
}

namespace {

// Sets a worker's flag (cmu_ held) and keeps the count of workers with it set, which producers
// read without the lock (sequentially consistent: see "How it works").
void set_counted(bool& flag, std::atomic<std::size_t>& count, bool value) {
  if (flag == value) return;
  flag = value;
  if (value) {
    count.fetch_add(1, std::memory_order_seq_cst);
  } else {
    count.fetch_sub(1, std::memory_order_seq_cst);
  }
}

}  // namespace

void Queue::set_idle(Worker& w, bool idle) { set_counted(w.idle, idle_workers_, idle); }

void Queue::set_lingering(Worker& w, bool lingering) {
  set_counted(w.lingering, lingering_workers_, lingering);
}

bool Queue::await_room(std::size_t n, const std::chrono::steady_clock::time_point* deadline) {
  writers_waiting_.fetch_add(1, std::memory_order_seq_cst);
  wake_lingering();  // room comes from delivering: no gathering meanwhile
  bool room;
  {
    std::unique_lock<std::mutex> lock(room_mu_);
    // Sequentially consistent: a worker that finishes events after our look at finished_ (in
    // has_room) sees writers_waiting_ raised, and notifies under room_mu_.
    auto done = [&] { return closing_.load(std::memory_order_seq_cst) || has_room(n); };
    if (deadline != nullptr) {
      has_room_.wait_until(lock, *deadline, done);
    } else {
      has_room_.wait(lock, done);
    }
    room = !closing_.load(std::memory_order_seq_cst) && has_room(n);
  }
  writers_waiting_.fetch_sub(1, std::memory_order_seq_cst);
  return room;
}

std::size_t Queue::take_limit() const {
  if (batch_destination_) return options_.batch.max_events;
  return options_.workers > 1 ? 1 : options_.max_batch;
}

bool Queue::take_now() const {
  return stopping_.load(std::memory_order_relaxed) || closing_.load(std::memory_order_relaxed) ||
         writers_waiting_.load(std::memory_order_seq_cst) > 0 || waiting() >= take_limit() ||
         (options_.capacity > 0 && pending() >= options_.capacity);
}

void Queue::linger(Worker& self, std::unique_lock<std::mutex>& lock) {
  if (take_now()) return;
  gather(self, lock, internal::saturating_add(std::chrono::steady_clock::now(), options_.linger));
}

void Queue::gather(Worker& self, std::unique_lock<std::mutex>& lock,
                   std::chrono::steady_clock::time_point until) {
  set_lingering(self, true);  // then look (take_now): a producer that publishes after this wakes
                              // us when take_now() holds
  self.wake.wait_until(lock, until, [&] { return !self.lingering || take_now(); });
  set_lingering(self, false);
}

void Queue::wake_lingering() {
  // Sequentially consistent after the writer raised writers_waiting_: a worker that raised
  // settling_workers_ before is seen here; one that raises it later sees writers_waiting_.
  if (lingering_workers_.load(std::memory_order_seq_cst) == 0 &&
      settling_workers_.load(std::memory_order_seq_cst) == 0) {
    return;
  }
  std::lock_guard<std::mutex> lock(cmu_);
  for (auto& w : workers_) {
    if (w->lingering) {
      set_lingering(*w, false);
      w->wake.notify_one();
    } else if (w->settling) {
      w->wake.notify_one();
    }
  }
}

void Queue::park(Worker& self, std::unique_lock<std::mutex>& lock) {
  const auto idle = [&] {
    return !stopping_.load(std::memory_order_relaxed) &&
           !closing_.load(std::memory_order_relaxed) && waiting() == 0;
  };
  if (options_.spin.count() <= 0 || options_.linger.count() > 0) {
    for (;;) {
      set_idle(self, true);  // set again after every wake-up, spurious or not; then look again
      if (!idle()) break;
      self.wake.wait(lock);
    }
    set_idle(self, false);
    return;
  }
  const auto ran_out = std::chrono::steady_clock::now();
  const auto spin_end = internal::saturating_add(ran_out, options_.spin);
  bool caught = false;
  if (self.spin_score >= kSpinWorthIt) {
    switch (spin(lock, spin_end)) {
      case SpinResult::kCaught:
        caught = true;
        break;
      case SpinResult::kNoSlot:
        caught = doze(self, lock, std::min(spin_end, ran_out + kMaxDoze));
        break;
      case SpinResult::kTimedOut:
        break;
    }
  }
  for (;;) {
    set_idle(self, true);
    if (!idle()) break;
    self.wake.wait(lock);
  }
  set_idle(self, false);
  // Parked: would a spin have caught the event that woke it? (A close or a spurious wake-up
  // leaves woken_at before ran_out: a miss.)
  if (!caught) caught = self.woken_at >= ran_out && self.woken_at <= spin_end;
  learn(self.spin_score, kSpinScoreMax, caught);
}

bool Queue::doze(Worker& self, std::unique_lock<std::mutex>& lock,
                 std::chrono::steady_clock::time_point until) {
  gather(self, lock, until);
  return waiting() > 0 || closing_.load(std::memory_order_relaxed);
}

Queue::SpinResult Queue::spin(std::unique_lock<std::mutex>& lock,
                              std::chrono::steady_clock::time_point until) {
  SpinSlot slot;
  if (!slot) return SpinResult::kNoSlot;
  const std::uint64_t seen = fifo_->taken();  // nothing is waiting: taken == published
  spinners_.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  bool signalled = false;
  // It looks at the published count every kLook pauses, not at every one: a look pulls the
  // producers' cache line over, and their next publish must take it back. Looking less often
  // lets events gather (a few hundred nanoseconds' worth), so the worker takes them together and
  // stays a few cache lines behind the producers instead of sharing every line with them.
  constexpr unsigned kLook = 64;
  for (;;) {
    for (unsigned i = 0; i < kLook; ++i) cpu_relax();
    if (fifo_->published() != seen || closing_.load(std::memory_order_relaxed)) {
      signalled = true;
      break;
    }
    if (std::chrono::steady_clock::now() >= until) break;
  }
  // Decremented before cmu_ is taken again: a producer that then finds no spinner finds this
  // worker idle, or finds that it has taken the events.
  spinners_.fetch_sub(1, std::memory_order_relaxed);
  slot.release();
  lock.lock();
  return signalled ? SpinResult::kCaught : SpinResult::kTimedOut;
}

void Queue::dead_letter(const Event& event) {
  if (!options_.dead_letter) return;
  if (options_.dead_letter->write(event).is_ok()) {
    std::lock_guard<std::mutex> lock(cmu_);
    ++consumed_.dead_lettered;
  }
}

bool Queue::batch_ready() const {
  return waiting() >= options_.batch.max_events ||
         (options_.batch.max_bytes > 0 &&
          waiting_bytes_.load(std::memory_order_relaxed) >= options_.batch.max_bytes) ||
         // A full queue cannot fill the batch any further: waiting for max_wait would only stall
         // the writers.
         (options_.capacity > 0 && pending() >= options_.capacity);
}

void Queue::take(std::vector<Event>& batch) {
  const std::size_t limit = take_limit();
  std::uint64_t available = waiting();
  if (!counts_bytes_) {  // no byte bound: no need to look into the events
    while (available > 0 && batch.size() < limit) {
      batch.push_back(fifo_->pop());
      --available;
    }
    return;
  }
  std::uint64_t bytes = 0;
  while (available > 0 && batch.size() < limit) {
    const std::uint64_t size = batch_bytes(fifo_->front());
    if (!internal::joins_batch(batch.empty(), bytes, size, options_.batch.max_bytes)) break;
    bytes += size;
    batch.push_back(fifo_->pop());
    --available;
  }
  waiting_bytes_.fetch_sub(bytes, std::memory_order_relaxed);  // once per take, not per event
}

void Queue::settle(Worker& self, std::unique_lock<std::mutex>& lock) {
  // What ends a settle early, asleep or busy (sequentially consistent: see wake_lingering()).
  const auto interrupted = [&] {
    return closing_.load(std::memory_order_relaxed) || stopping_.load(std::memory_order_relaxed) ||
           writers_waiting_.load(std::memory_order_seq_cst) > 0;
  };
  SpinSlot slot;
  if (!slot) {
    // No core to wait busily on: asleep instead, long enough to pay for the two context switches
    // (see "Settling" in queue.h).
    const auto until =
        internal::saturating_add(std::chrono::steady_clock::now(),
                                 std::max<std::chrono::nanoseconds>(options_.settle, kMaxDoze));
    lock.lock();
    set_counted(self.settling, settling_workers_, true);  // then look: see wake_lingering()
    self.wake.wait_until(lock, until, interrupted);
    set_counted(self.settling, settling_workers_, false);
    lock.unlock();
    return;
  }
  const auto until = internal::saturating_add(std::chrono::steady_clock::now(), options_.settle);
  do {
    for (int i = 0; i < 16; ++i) cpu_relax();
  } while (std::chrono::steady_clock::now() < until && !interrupted());
}

void Queue::run(Worker& self) {
  std::vector<Event> batch;
  batch.reserve(batch_destination_ ? options_.batch.max_events : options_.max_batch);
  std::vector<Status> results;
  std::vector<Event> undelivered;  // only ever filled once close_until's deadline has passed
  const bool lingers = options_.linger.count() > 0;
  bool delivered_before = false;  // lingering starts after the first delivery from idle
  // Settling (queue.h): one worker whose takes can hold more than one event, and whose batches
  // (if any) do not wait to fill by themselves.
  const bool settles = options_.settle.count() > 0 && !lingers && take_limit() > 1 &&
                       options_.workers == 1 &&
                       !(batch_destination_ && options_.batch.max_wait.count() > 0);
  bool small_take = false;  // the last take was not full: was settling worth it?
  bool settled = false;     // and the worker settled after it
  auto stopping = [&] { return stopping_.load(std::memory_order_relaxed); };
  auto closing = [&] { return closing_.load(std::memory_order_relaxed); };
  std::unique_lock<std::mutex> lock(cmu_);
  for (;;) {
    if (lingers && delivered_before) linger(self, lock);
    if (!stopping() && !closing() && waiting() == 0) {
      // Ran out after a small take. A settle that ended with nothing did not pay; without one,
      // would settling have caught the next event? The producer that wakes us notes when.
      const bool unsettled = small_take && !settled;
      const auto ran_out =
          unsettled ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      park(self, lock);
      if (small_take) {
        learn(self.settle_score, kSpinScoreMax,
              unsettled && self.woken_at >= ran_out && self.woken_at <= ran_out + options_.settle);
      }
    } else if (small_take) {
      learn(self.settle_score, kSpinScoreMax, true);
      // The next events came within `settle` of the run-out, so within `spin` too: the worker
      // learns from it as from a spin that caught them (else a settling worker would learn to
      // spin only from its rarer parks, and be woken more often meanwhile).
      if (settled && options_.settle <= options_.spin) learn(self.spin_score, kSpinScoreMax, true);
    }
    small_take = false;
    delivered_before = waiting() > 0;
    if (stopping() || waiting() == 0) break;  // past the close deadline, or closing and drained

    // max_wait 0: take whatever is waiting now (no clock read, no timed wait).
    if (batch_destination_ && !closing() && options_.batch.max_wait.count() > 0 && !batch_ready()) {
      // Wait for the batch to fill, at most max_wait; producers wake us (idle) at every event.
      const Clock::TimePoint deadline =
          internal::saturating_add(clock_->now(), options_.batch.max_wait);
      clock_->wait_until(lock, self.wake, deadline, [&] {
        set_idle(self, true);  // then look: a producer that publishes after this wakes us
        return stopping() || closing() || batch_ready();
      });
      set_idle(self, false);
      if (stopping()) break;
      if (waiting() == 0) continue;  // another worker took them
    }

    take(batch);
    if (batch_destination_) ++consumed_.batches;
    small_take = settles && batch.size() < take_limit() &&
                 (options_.capacity == 0 || pending() < options_.capacity / 2);
    lock.unlock();

    std::uint64_t delivered = 0, failed = 0;
    auto account = [&](Event& event, const Status& status) {
      if (status.is_ok()) {
        ++delivered;
      } else if (stopping_.load(std::memory_order_acquire)) {
        undelivered.push_back(std::move(event));  // interrupted by close_until at its deadline
      } else {
        ++failed;
      }
    };
    if (batch_destination_) {
      results.assign(batch.size(), Status());
      batch_destination_->write_batch(batch, results);
      for (std::size_t i = 0; i < batch.size(); ++i) account(batch[i], results[i]);
    } else {
      for (Event& event : batch) {
        // Once the deadline has passed the rest of the batch is not attempted: it is undelivered.
        if (stopping_.load(std::memory_order_acquire)) {
          undelivered.push_back(std::move(event));
          continue;
        }
        account(event, destination_->write(event));
      }
    }
    const std::size_t taken = batch.size();
    Event::release_all(batch);  // without the lock held
    batch.clear();
    results.clear();
    settled = small_take && self.settle_score >= kSpinWorthIt && !closing();
    if (settled) settle(self, lock);

    lock.lock();
    consumed_.delivered += delivered;
    consumed_.failed += failed;
    consumed_.undelivered_at_close += undelivered.size();
    report_.undelivered += undelivered.size();
    finished_.fetch_add(taken, std::memory_order_seq_cst);
    if (writers_waiting_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> room(room_mu_);
      has_room_.notify_all();
    }
    if (closing() && pending() == 0) drained_.notify_all();
    if (!undelivered.empty()) {
      lock.unlock();
      for (const Event& e : undelivered) dead_letter(e);
      undelivered.clear();
      lock.lock();
    }
  }
}

Queue::CloseReport Queue::close_until(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<ProducerLock> producers(pmu_);
  std::unique_lock<std::mutex> lock(cmu_);
  if (closing_.load(std::memory_order_relaxed)) {
    // An earlier or concurrent close: wait for it to finish, then share its report.
    producers.unlock();
    closed_cv_.wait(lock, [&] { return closed_; });
    return report_;
  }
  closing_.store(true, std::memory_order_seq_cst);  // a spinning worker stops spinning
  producers.unlock();  // writers find closing_ set from now on: nothing more is appended
  {
    std::lock_guard<std::mutex> room(room_mu_);  // writers blocked for room get kClosed
    has_room_.notify_all();
  }
  // Idle workers see closing_ and exit when nothing is waiting; one filling a batch sends it now;
  // a lingering one stops gathering.
  for (auto& w : workers_) {
    set_lingering(*w, false);
    w->wake.notify_all();
  }

  const bool drained = drained_.wait_until(lock, deadline, [&] { return pending() == 0; });
  std::vector<Event> leftovers;
  if (!drained) {
    report_.timed_out = true;
    stopping_.store(true, std::memory_order_release);
    for (std::uint64_t n = waiting(); n > 0; --n) leftovers.push_back(fifo_->pop());
    waiting_bytes_.store(0, std::memory_order_relaxed);
    finished_.fetch_add(leftovers.size(), std::memory_order_seq_cst);
    report_.undelivered += leftovers.size();
    consumed_.undelivered_at_close += leftovers.size();
    for (auto& w : workers_) w->wake.notify_all();
  }
  lock.unlock();

  if (drained) {
    for (auto& w : workers_) w->thread.join();  // idle: they exit by themselves
    destination_->close();
  } else {
    // Writes in flight must return before the workers can be joined; closing the destination
    // makes them do so promptly (see sink.h).
    destination_->close();
    for (auto& w : workers_) w->thread.join();
  }
  for (const Event& e : leftovers) dead_letter(e);

  lock.lock();
  closed_ = true;
  closed_cv_.notify_all();
  return report_;
}

Status Queue::close() {
  const CloseReport report = close_until(deadline_after(options_.close_timeout));
  if (report.undelivered == 0) return Status::ok();
  return Status::timeout(std::to_string(report.undelivered) +
                         " event(s) left undelivered at the close deadline");
}

bool Queue::wait_for_room(std::size_t n, std::chrono::steady_clock::time_point deadline) {
  const std::size_t cap = options_.capacity;
  if (cap == 0 || n == 0) return true;
  if (n > cap) return false;  // would never fit: no point waiting for the deadline
  return await_room(n, &deadline);
}

Queue::Stats Queue::stats() const {
  std::lock_guard<ProducerLock> producers(pmu_);
  std::lock_guard<std::mutex> lock(cmu_);
  Stats s = consumed_;
  s.enqueued = produced_.enqueued;
  s.dropped_newest = produced_.dropped_newest;
  s.dropped_oldest = produced_.dropped_oldest;
  s.rejected_full = produced_.rejected_full;
  s.high_water = produced_.high_water;
  s.pending = pending();
  for (const auto& w : workers_) s.parked_workers += w->idle ? 1 : 0;
  s.blocked_writers = writers_waiting_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace evroute
