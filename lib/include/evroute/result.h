// Result<T>: a value, or the Status saying why there is none — the return type of a function that
// produces something and can fail, as Status is of one that only succeeds or fails.
//
//   Result<std::shared_ptr<Pipeline>> p = Pipeline::build(config);
//   if (!p.ok()) return p.status();
//   use(*p);
//
// A Result made from a Status must be given a failure (an OK Status without a value is a bug:
// it becomes kInvalidArgument). value() and operator* on a failed Result are undefined.
#pragma once

#include <optional>
#include <utility>

#include "evroute/status.h"

namespace evroute {

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}       // NOLINT: implicit, as a return value
  Result(Status error) : status_(std::move(error)) {  // NOLINT: implicit, as a return value
    if (status_.is_ok()) status_ = Status::invalid_argument("Result made from an OK Status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }  // OK when there is a value

  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace evroute
