#include "evroute/status.h"

namespace evroute {

std::string_view code_name(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kClosed:
      return "closed";
    case Code::kFull:
      return "full";
    case Code::kTimeout:
      return "timeout";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kRejected:
      return "rejected";
    case Code::kInvalidArgument:
      return "invalid argument";
    case Code::kDropped:
      return "dropped";
  }
  return "unknown";
}

const std::string& Status::message() const noexcept {
  static const std::string none;
  return rep_ ? rep_->message : none;
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s(code_name(rep_->code));
  if (!rep_->message.empty()) {
    s += ": ";
    s += rep_->message;
  }
  return s;
}

std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.to_string(); }

}  // namespace evroute
