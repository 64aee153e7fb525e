// fuzz_cloudevents_out: cloudevents::to_http() (daemon/cloudevents.h) on every event ingest
// accepts, in both modes.
//
// Input: byte 0 picks the ingest format (value % 4, as in fuzz_ingest); the rest is the body.
// Each accepted event (its properties checked as in fuzz_ingest) is rendered in structured and in
// binary mode. Properties: the Content-Type and every header value are free of CR, LF and NUL
// (else a payload could inject headers into the webhook request), header names are non-empty
// "ce-" tokens; structured mode: the body is valid JSON, a valid CloudEvent whose id is the
// event's id; binary mode: ce-specversion and ce-id are sent.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cloudevents.h"
#include "ingest_properties.h"

namespace {

using evroute_fuzz::require;
namespace ce = evrouted::cloudevents;

bool is_header_safe(std::string_view value) {
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

bool is_token(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f ||
        std::string_view("\"(),/:;<=>?@[\\]{}").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void check_message(const ce::HttpMessage& message) {
  require(is_header_safe(message.content_type), "Content-Type contains CR, LF or NUL",
          message.content_type);
  for (const auto& [name, value] : message.headers) {
    require(is_token(name) && name.starts_with("ce-"), "header name is not a ce- token", name);
    require(is_header_safe(value), "header value contains CR, LF or NUL", name + ": " + value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ce::Options options;
  for (const evroute::Event& event : evroute_fuzz::ingest_input(data, size)) {
    const ce::HttpMessage structured = ce::to_http(event, ce::Mode::kStructured, options);
    require(structured.error.empty(), "an accepted event cannot be rendered", structured.error);
    check_message(structured);
    require(ce::Json::accept(structured.body), "structured body is not valid JSON",
            structured.body);
    const auto object = ce::Json::parse(structured.body);
    const std::string why = ce::check(object);
    require(why.empty(), "structured body is not a valid CloudEvent", why);
    require(object["id"] == std::string(event.id()), "structured CloudEvent id differs",
            structured.body);

    const ce::HttpMessage binary = ce::to_http(event, ce::Mode::kBinary, options);
    require(binary.error.empty(), "an accepted event cannot be rendered", binary.error);
    check_message(binary);
    bool has_id = false, has_specversion = false;
    for (const auto& [name, value] : binary.headers) {
      has_id = has_id || name == "ce-id";
      has_specversion = has_specversion || (name == "ce-specversion" && value == "1.0");
    }
    require(has_id && has_specversion, "binary mode without ce-id or ce-specversion 1.0",
            event.payload());
  }
  return 0;
}
