// Internal to HttpServer: an event loop and the connections that live on it, and the deadline
// sweep that enforces request_timeout and idle_timeout.
#pragma once

// Boost 1.74's Asio with GCC 12 in C++20 needs <utility> before its headers (std::exchange).
#include <utility>
//
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <list>

namespace evrouted::http::internal {

class Connection;

// One event loop: an io_context run by one thread, and the connections that live on it.
struct Loop {
  std::list<Connection*> connections;  // touched on this loop's thread only
  boost::asio::io_context context{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{
      context.get_executor()};
  boost::asio::steady_timer sweep{context};
  // Set on this loop's thread when the server stops: the sweep is not armed again. (Cancelling
  // the timer is not enough: a sweep that has expired but not yet run ignores the cancel, and
  // re-arming it would keep run() from returning: SIGTERM hung in CI with this loop idle.)
  bool stopping = false;
};

// What the loop knows of a connection: its deadline, and how to expire or close it. A connection
// is in its loop's `connections` (at `where`) from its start until it is destroyed, and is touched
// on that loop only.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void expire() = 0;  // its deadline has passed (on its loop)
  virtual void close() = 0;

  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::list<Connection*>::iterator where;
};

// Every kSweepPeriod (250 ms), on the loop, expires the connections whose deadline has passed
// (no timer per socket operation, so deadlines fire up to that much late); until the sweep timer
// is cancelled or the loop is stopping.
void arm_sweep(Loop& loop);

}  // namespace evrouted::http::internal
