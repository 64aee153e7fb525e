#include "cloudevents.h"

#include "hex.h"
#include "json_parse.h"
#include "text.h"
#include "utc_time.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace evrouted::cloudevents {
namespace {

constexpr std::string_view kRequired[] = {"id", "source", "specversion", "type"};
constexpr std::string_view kStringAttributes[] = {
    "id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"};

bool contains(std::span<const std::string_view> names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Core spec: attribute names are lower-case ASCII letters and digits.
bool valid_attribute_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

std::string join(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

// Text a JSON string can carry as is: UTF-8 without control characters but tab, CR and LF.
bool is_text(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u == 0x7f) return false;
  }
  return valid_utf8(s);
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string media_type(std::string_view content_type) {
  return ascii_lower(trim(content_type.substr(0, content_type.find(';'))));
}

// An event's payload, parsed once: `json` when it is JSON (else it is sent as text); `error` when
// it cannot be rendered at all (it nests too deep: the event is dead-lettered with that reason).
struct Payload {
  std::optional<Json> json;
  std::string error;
  bool is_cloudevent() const { return json && json->is_object() && check(*json).empty(); }
};

Payload parse_payload(const evroute::Event& event) {
  Payload payload;
  Json parsed;
  bool too_deep = false;
  if (parse_json(event.payload(), &parsed, {kMaxEventDepth}, &too_deep).empty()) {
    payload.json = std::move(parsed);
  } else if (too_deep) {
    payload.error = "the event nests deeper than " + std::to_string(kMaxEventDepth) +
                    " levels: it cannot be rendered as a CloudEvent";
  }
  return payload;
}

Json wrap(const evroute::Event& event, const Options& options, std::optional<Json> data) {
  const bool json = data.has_value();
  std::string type = options.default_type;
  if (json && data->is_object()) {
    // A type a CloudEvent can carry: a non-empty string without control characters.
    // (json::empty() is false for every string: test the string itself.)
    if (auto it = data->find("type"); it != data->end() && it->is_string() &&
                                      !it->get_ref<const std::string&>().empty() &&
                                      !has_control_character(it->get_ref<const std::string&>())) {
      type = it->get<std::string>();
    }
  }
  Json ce = {{"specversion", "1.0"},
             {"id", std::string(event.id())},
             {"source", options.source},
             {"type", std::move(type)},
             {"time", utc_time(event.received(), UtcDigits::kMicroseconds)},
             {"datacontenttype", json ? "application/json" : "text/plain"}};
  ce["data"] = json ? std::move(*data) : Json(std::string(event.payload()));
  return ce;
}

}  // namespace

std::string check(const Json& object) {
  if (!object.is_object()) {
    return "a CloudEvent must be a JSON object, not " + std::string(object.type_name());
  }
  std::vector<std::string> missing;
  for (std::string_view name : kRequired) {
    auto it = object.find(name);
    if (it == object.end() || it->is_null()) missing.emplace_back(name);
  }
  if (!missing.empty()) {
    return std::string(missing.size() == 1 ? "missing required attribute: "
                                           : "missing required attributes: ") +
           join(missing);
  }
  bool has_data = false, has_data_base64 = false;
  for (const auto& [name, value] : object.items()) {
    if (value.is_null()) continue;
    if (name == "data") {
      has_data = true;
      continue;
    }
    if (name == "data_base64") {
      has_data_base64 = true;
      if (!value.is_string() || !base64_decode(value.get_ref<const std::string&>())) {
        return "data_base64 is not valid base64";
      }
      continue;
    }
    if (!valid_attribute_name(name)) {
      return "'" + name + "' is not a valid CloudEvents attribute name (lower-case letters a-z " +
             "and digits only)";
    }
    if (contains(kStringAttributes, name)) {
      if (!value.is_string()) return "attribute '" + name + "' must be a string";
      const std::string& s = value.get_ref<const std::string&>();
      if (s.empty()) return "attribute '" + name + "' must not be empty";
      if (has_control_character(s)) {
        return "attribute '" + name + "' must not contain control characters";
      }
      if (name == "specversion" && s != "1.0") {
        return "specversion must be \"1.0\", not \"" + s + "\"";
      }
      if (name == "time" && !is_rfc3339(s)) {
        return "attribute 'time' is not an RFC 3339 timestamp: '" + s + "'";
      }
      if ((name == "source" || name == "dataschema") && !is_uri_reference(s)) {
        return "attribute '" + name + "' is not a URI reference: '" + s + "'";
      }
    } else if (!value.is_string() && !value.is_boolean() && !value.is_number_integer()) {
      return "extension '" + name + "' must be a string, an integer or a boolean, not " +
             std::string(value.type_name());
    } else if (value.is_string() && has_control_character(value.get_ref<const std::string&>())) {
      return "extension '" + name + "' must not contain control characters";
    }
  }
  if (has_data && has_data_base64) return "a CloudEvent cannot have both data and data_base64";
  return {};
}

std::string from_binary(std::span<const Header> ce_headers, std::string_view content_type,
                        std::string_view body, Json* out) {
  Json attributes = Json::object();
  for (const auto& [header, value] : ce_headers) {
    const std::string name = header.substr(3);  // after "ce-"
    if (name == "datacontenttype") {
      return "header ce-datacontenttype: in binary mode the data's type is the Content-Type";
    }
    if (!valid_attribute_name(name) || name == "data") {
      return "header " + header + ": '" + name +
             "' is not a valid CloudEvents attribute name (lower-case letters a-z and digits only)";
    }
    if (attributes.contains(name)) return "header " + header + " appears more than once";
    if (!valid_utf8(value)) return "header " + header + ": the value is not UTF-8";
    if (has_control_character(value)) {
      return "header " + header + ": the value holds control characters";
    }
    attributes[name] = value;
  }
  std::vector<std::string> missing;
  for (std::string_view name : kRequired) {
    if (!attributes.contains(name)) missing.push_back("ce-" + std::string(name));
  }
  if (!missing.empty()) {
    return std::string(missing.size() == 1 ? "missing required header: "
                                           : "missing required headers: ") +
           join(missing);
  }

  Json& ce = *out;
  ce = Json::object();
  for (std::string_view name : {"specversion", "id", "source", "type"}) {  // canonical order first
    ce[std::string(name)] = attributes[std::string(name)];
  }
  for (const auto& [name, value] : attributes.items()) {
    if (!ce.contains(name)) ce[name] = value;
  }
  if (!printable_ascii(content_type)) {
    return "the Content-Type header holds bytes that are not printable ASCII";
  }
  if (!content_type.empty()) ce["datacontenttype"] = std::string(content_type);
  if (!body.empty()) {
    if (is_json_media_type(content_type)) {
      Json data;
      bool too_deep = false;
      // The data sits one level inside the CloudEvent, which is the event.
      if (std::string err = parse_json(body, &data, {kMaxEventDepth - 1}, &too_deep);
          !err.empty()) {
        if (too_deep) return "the body is " + err + " (the data of an event nested at most 64)";
        return "the body is not valid JSON, but its Content-Type is " + std::string(content_type);
      }
      ce["data"] = std::move(data);
    } else if (is_text(body)) {
      ce["data"] = std::string(body);
    } else {
      ce["data_base64"] = base64_encode(body);
    }
  }
  return check(ce);
}

Json as_cloudevent(const evroute::Event& event, const Options& options, std::string* error) {
  Payload payload = parse_payload(event);
  if (error) *error = payload.error;
  if (!payload.error.empty()) return Json();
  if (payload.is_cloudevent()) return std::move(*payload.json);
  return wrap(event, options, std::move(payload.json));
}

HttpMessage to_http(const evroute::Event& event, Mode mode, const Options& options) {
  HttpMessage message;
  Payload payload = parse_payload(event);
  if (!payload.error.empty()) {
    message.error = std::move(payload.error);
    return message;
  }
  const bool wrapped = !payload.is_cloudevent();
  if (mode == Mode::kStructured) {
    message.content_type = kStructuredType;
    message.body = wrapped ? dump_json(wrap(event, options, std::move(payload.json)))
                           : std::string(event.payload());
    return message;
  }
  const Json ce =
      wrapped ? wrap(event, options, std::move(payload.json)) : std::move(*payload.json);

  const Json* data = nullptr;
  const Json* data_base64 = nullptr;
  for (const auto& [name, value] : ce.items()) {
    if (value.is_null()) continue;
    if (name == "data") {
      data = &value;
    } else if (name == "data_base64") {
      data_base64 = &value;
    } else if (name == "datacontenttype") {
      message.content_type = value.get<std::string>();
    } else {
      message.headers.emplace_back(
          "ce-" + name,
          percent_encode(value.is_string() ? value.get_ref<const std::string&>() : value.dump()));
    }
  }
  if (data_base64) {
    message.body = *base64_decode(data_base64->get_ref<const std::string&>());  // check()ed
    if (message.content_type.empty()) message.content_type = "application/octet-stream";
  } else if (data) {
    if (message.content_type.empty()) message.content_type = "application/json";  // JSON format
    if (wrapped && data->is_object()) {
      message.body = event.payload();  // the event's own bytes
    } else if (data->is_string() && !is_json_media_type(message.content_type)) {
      message.body = data->get<std::string>();
    } else {
      message.body = dump_json(*data);
    }
  }
  return message;
}

std::string percent_encode(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '"' || c == '%') {
      const auto hex = hex_byte(u, /*upper=*/true);
      out += '%';
      out += hex[0];
      out += hex[1];
    } else {
      out += c;
    }
  }
  return out;
}

bool is_json_media_type(std::string_view content_type) {
  const std::string media = media_type(content_type);
  return media == "application/json" || media == "text/json" ||
         (media.size() > 5 && media.ends_with("+json"));
}

bool is_uri_reference(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size() || !std::isxdigit(static_cast<unsigned char>(text[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
        return false;
      }
      i += 2;
    } else if (!std::isalnum(static_cast<unsigned char>(c)) &&
               std::string_view("-._~:/?#[]@!$&'()*+,;=").find(c) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool is_rfc3339(std::string_view t) {
  auto digits = [&](std::size_t pos, std::size_t n, int min, int max) {
    if (pos + n > t.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(t[i]))) return false;
      v = v * 10 + (t[i] - '0');
    }
    return v >= min && v <= max;
  };
  auto at = [&](std::size_t pos, std::string_view chars) {
    return pos < t.size() && chars.find(t[pos]) != std::string_view::npos;
  };
  // YYYY-MM-DDTHH:MM:SS
  if (!(digits(0, 4, 0, 9999) && at(4, "-") && digits(5, 2, 1, 12) && at(7, "-") &&
        digits(8, 2, 1, 31) && at(10, "Tt") && digits(11, 2, 0, 23) && at(13, ":") &&
        digits(14, 2, 0, 59) && at(16, ":") && digits(17, 2, 0, 60))) {
    return false;
  }
  std::size_t pos = 19;
  if (at(pos, ".")) {  // fraction: at least one digit
    const std::size_t start = ++pos;
    while (pos < t.size() && std::isdigit(static_cast<unsigned char>(t[pos]))) ++pos;
    if (pos == start) return false;
  }
  if (at(pos, "Zz")) return pos + 1 == t.size();
  return at(pos, "+-") && digits(pos + 1, 2, 0, 23) && at(pos + 3, ":") &&
         digits(pos + 4, 2, 0, 59) && pos + 6 == t.size();
}

}  // namespace evrouted::cloudevents
