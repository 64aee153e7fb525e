// The JSON replies every Server handler writes (server*.cpp; not part of the Server interface).
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "http_server.h"
#include "json_parse.h"

namespace evrouted {

using Json = nlohmann::json;

inline void reply(http::Response& res, int status, const Json& body) {
  res.status = status;
  res.content_type = "application/json";
  res.body = dump_json(body);  // error texts may quote any bytes
}

inline void reply_error(http::Response& res, int status, std::string_view message) {
  reply(res, status, Json{{"error", message}});
}

}  // namespace evrouted
