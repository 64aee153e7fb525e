// Status: the one error type of the evroute library.
//
// Every fallible operation returns a Status. An OK status carries no message and costs no
// allocation; an error carries a Code the caller can act on (retry, drop, dead-letter) and a
// human-readable message. A status may also carry a retry-after hint (e.g. from an HTTP 429/503
// Retry-After header) that retry strategies honour.
//
// Thread-safety: a Status is a value; distinct objects may be used from distinct threads freely.
#pragma once

#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>

namespace evroute {

enum class Code {
  kOk = 0,
  kClosed,           // the sink is closed; it will never accept another event
  kFull,             // a bounded queue or buffer stayed full past its timeout
  kTimeout,          // an operation did not complete in time (e.g. a receive)
  kUnavailable,      // a transient failure: retrying later may succeed
  kRejected,         // a permanent failure for this event: retrying will not help
  kInvalidArgument,  // the caller passed something unusable (e.g. an empty event)
  kDropped,          // an overflow policy dropped the event (it is counted)
};

// The name of a code, e.g. "closed".
std::string_view code_name(Code code);

class Status {
 public:
  Status() noexcept = default;  // OK
  // An OK code makes an OK status: it carries no message.
  Status(Code code, std::string message)
      : rep_(code == Code::kOk ? nullptr
                               : std::make_unique<Rep>(Rep{code, std::move(message), {}})) {}
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status(Status&& other) noexcept = default;
  Status& operator=(const Status& other) {
    if (this != &other) *this = Status(other);
    return *this;
  }
  Status& operator=(Status&& other) noexcept = default;
  ~Status() = default;

  static Status ok() noexcept { return Status(); }
  static Status closed(std::string message = "sink is closed") {
    return Status(Code::kClosed, std::move(message));
  }
  static Status full(std::string message) { return Status(Code::kFull, std::move(message)); }
  static Status timeout(std::string message) { return Status(Code::kTimeout, std::move(message)); }
  static Status unavailable(std::string message) {
    return Status(Code::kUnavailable, std::move(message));
  }
  static Status rejected(std::string message) {
    return Status(Code::kRejected, std::move(message));
  }
  static Status invalid_argument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status dropped(std::string message) { return Status(Code::kDropped, std::move(message)); }

  bool is_ok() const noexcept { return rep_ == nullptr; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return rep_ ? rep_->code : Code::kOk; }
  const std::string& message() const noexcept;

  bool is_closed() const noexcept { return code() == Code::kClosed; }
  // True for failures a retry may cure: kUnavailable, kTimeout and kFull.
  bool is_retryable() const noexcept {
    const Code c = code();
    return c == Code::kUnavailable || c == Code::kTimeout || c == Code::kFull;
  }

  // A hint from the destination: do not try again before this much time has passed (zero: none;
  // always zero for an OK status, which takes no hint).
  std::chrono::milliseconds retry_after() const noexcept {
    return rep_ ? rep_->retry_after : std::chrono::milliseconds{0};
  }
  Status& with_retry_after(std::chrono::milliseconds d) & noexcept {
    if (rep_) rep_->retry_after = d;
    return *this;
  }
  Status&& with_retry_after(std::chrono::milliseconds d) && noexcept {
    if (rep_) rep_->retry_after = d;
    return std::move(*this);
  }

  // "ok", or "<code>: <message>".
  std::string to_string() const;

 private:
  // An error's details; OK is no Rep at all, so an OK status is one null pointer: returning one
  // from a sink's write() (every event, every sink) stores a word and tests it.
  struct Rep {
    Code code;
    std::string message;
    std::chrono::milliseconds retry_after;
  };
  std::unique_ptr<Rep> rep_;
};

std::ostream& operator<<(std::ostream& os, const Status& s);

}  // namespace evroute
