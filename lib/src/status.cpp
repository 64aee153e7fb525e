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

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  std::string s(code_name(code_));
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.to_string(); }

}  // namespace evroute
