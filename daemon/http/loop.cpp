#include "http/loop.h"

#include <boost/system/error_code.hpp>
#include <vector>

namespace evrouted::http::internal {

namespace {

constexpr auto kSweepPeriod = std::chrono::milliseconds(250);

}  // namespace

void arm_sweep(Loop& loop) {
  loop.sweep.expires_after(kSweepPeriod);
  loop.sweep.async_wait([&loop](const boost::system::error_code& ec) {
    if (ec || loop.stopping) return;
    const auto now = std::chrono::steady_clock::now();
    std::vector<Connection*> expired;
    for (Connection* c : loop.connections) {
      if (c->deadline <= now) expired.push_back(c);
    }
    // expire() never destroys a connection at once (its pending operations hold it).
    for (Connection* c : expired) c->expire();
    arm_sweep(loop);
  });
}

}  // namespace evrouted::http::internal
