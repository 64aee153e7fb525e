// Receiver: a real HTTP webhook receiver for tests (cpp-httplib server on 127.0.0.1).
//
// Records every request it answers. `respond` decides each answer's status (default 200) and may
// block to play a slow endpoint; stop() unblocks such handlers via the gate.
#pragma once

#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace evtest {

struct ReceivedRequest {
  std::string path;
  std::string body;
  httplib::Headers headers;
  int status = 0;                            // what the receiver answered
  std::chrono::steady_clock::time_point at;  // when it was answered
  std::string header(const std::string& name) const;
};

class Receiver {
 public:
  // port 0: any free port.
  explicit Receiver(int port = 0);
  ~Receiver();

  int port() const { return port_; }
  std::string url(const std::string& path = "/hooks") const;

  // Chooses the status of the n-th (0-based) request. Called on server threads.
  void set_respond(std::function<int(std::size_t n)> respond);
  // Chooses each answer's status from the request body instead (e.g. refuse a poison event).
  void set_respond_to_body(std::function<int(const std::string& body)> respond);
  // A Retry-After header sent with every 429 and 503 answer ("" for none, the default).
  void set_retry_after(std::string value);
  // While closed, handlers wait (up to 30 s) before answering: a slow endpoint.
  void close_gate();
  void open_gate();

  std::vector<ReceivedRequest> requests() const;
  // Requests answered 2xx.
  std::vector<ReceivedRequest> delivered() const;
  bool wait_delivered(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Requests being handled at once: now, and the most seen; wait_in_flight polls for n now.
  std::size_t in_flight() const;
  std::size_t max_in_flight() const;
  bool wait_in_flight(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void stop();

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::function<int(std::size_t)> respond_;
  std::function<int(const std::string&)> respond_to_body_;
  bool gate_open_ = true;
  std::string retry_after_;
  std::size_t seen_ = 0;
  std::size_t in_flight_ = 0, max_in_flight_ = 0;
  std::vector<ReceivedRequest> requests_;
};

// How many times each event (by its webhook-id header) was delivered (answered 2xx).
std::map<std::string, int> delivered_ids(const Receiver& hook);
// What `hook` received of the events `acknowledged`: how many never arrived, how many arrived more
// than once (every extra delivery counted), and how many distinct events arrived in all.
struct DeliveryTally {
  std::size_t lost = 0, duplicates = 0, distinct = 0;
};
DeliveryTally tally(const Receiver& hook, const std::set<std::string>& acknowledged);
// Waits until every id of `want` was delivered at least once.
bool wait_for_all(const Receiver& hook, const std::set<std::string>& want,
                  std::chrono::steady_clock::duration timeout);

}  // namespace evtest
