// Helpers shared by the http sink's unit tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "sinks/http/http_sink.h"
#include "sinks/http/webhook_url.h"
#include "support/events.h"

namespace evrouted {

// The sink's config for `url` (which must parse) with `timeout`.
inline HttpSinkConfig config_for(const std::string& url,
                                 Duration timeout = std::chrono::seconds(5)) {
  HttpSinkConfig c;
  EXPECT_TRUE(parse_webhook_url(url, &c).is_ok());
  c.timeout = timeout;
  return c;
}

// An event whose payload is {"id":ID,"type":"t"}.
inline evroute::Event ev(const std::string& id) { return evtest::json_ev(id, "t"); }

}  // namespace evrouted
