// The library example from README.md, built and run by the test suite so that it stays true.
#include <evroute/evroute.h>

#include <iostream>
#include <memory>

// A sink is anything with write() and close().
class Printer : public evroute::Sink {
 public:
  evroute::Status write(const evroute::Event& e) override {
    std::cout << e.id() << " " << e.payload() << "\n";
    return evroute::Status::ok();
  }
  evroute::Status close() override { return evroute::Status::ok(); }
};

int main() {
  // Printer behind a bounded queue (its own thread), behind a filter on the event type.
  auto printer = std::make_shared<Printer>();
  auto queue = std::make_shared<evroute::Queue>(
      printer,
      evroute::Queue::Options{.capacity = 1000, .when_full = evroute::OverflowPolicy::kDropOldest});
  auto orders = std::make_shared<evroute::Filter>(
      queue, [](const evroute::Event& e) { return e.type().starts_with("order."); });
  evroute::Broadcaster bus({orders});

  bus.write(evroute::Event::make("1", R"({"type":"order.created"})", {{"type", "order.created"}}));
  bus.write(evroute::Event::make("2", R"({"type":"user.signup"})", {{"type", "user.signup"}}));
  bus.close();  // closes the filter, which drains and closes the queue, then the printer
}
