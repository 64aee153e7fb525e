// CloudEvents 1.0 in and out (cloudevents.h): validation of the JSON form, binary-mode requests,
// percent-encoding, base64, timestamps, what the http sink's formats send, ingest of each mode,
// and the sink's `format` / `cloudevents` config.
#include "cloudevents.h"

#include <gtest/gtest.h>

#include "ingest.h"
#include "sinks/http/http_sink.h"
#include "sinks/http/webhook_signature.h"
#include "sinks/http/webhook_url.h"
#include "support/receiver.h"

namespace evrouted::cloudevents {
namespace {

using namespace std::chrono_literals;

const Json kMinimal = Json::parse(R"({"specversion":"1.0","id":"a","source":"/s","type":"t"})");

// kMinimal with these members added (or replaced).
Json with(const Json& members) {
  Json j = kMinimal;
  for (const auto& [key, value] : members.items()) j[key] = value;
  return j;
}
Json with(const std::string& key, Json value) { return with(Json{{key, std::move(value)}}); }

TEST(CloudEventsCheck, AcceptsValidEvents) {
  EXPECT_EQ(check(kMinimal), "");
  EXPECT_EQ(check(Json::parse(R"({"specversion":"1.0","id":"a","source":"urn:x","type":"t",
      "subject":"s","time":"2026-01-02T03:04:05.678+01:00","dataschema":"https://x/s.json",
      "datacontenttype":"application/xml","data":"<a/>","tenant":"acme","count":3,"ok":true,
      "nothing":null})")),
            "");
  EXPECT_EQ(check(with("data_base64", "AAEC/v8=")), "");
  EXPECT_EQ(check(with({{"data", nullptr}, {"data_base64", "AA=="}})), "");
}

TEST(CloudEventsCheck, NamesEveryMissingRequiredAttribute) {
  EXPECT_EQ(check(Json::object()), "missing required attributes: id, source, specversion, type");
  EXPECT_EQ(check(Json::parse(R"({"specversion":"1.0","id":"a","type":null})")),
            "missing required attributes: source, type");  // null is absent
  Json no_id = kMinimal;
  no_id.erase("id");
  EXPECT_EQ(check(no_id), "missing required attribute: id");
  EXPECT_EQ(check(Json::array()), "a CloudEvent must be a JSON object, not array");
}

TEST(CloudEventsCheck, RejectsInvalidAttributes) {
  EXPECT_EQ(check(with("specversion", "0.3")), "specversion must be \"1.0\", not \"0.3\"");
  EXPECT_EQ(check(with("specversion", 1.0)), "attribute 'specversion' must be a string");
  EXPECT_EQ(check(with("id", "")), "attribute 'id' must not be empty");
  EXPECT_EQ(check(with("source", 7)), "attribute 'source' must be a string");
  EXPECT_EQ(check(with("time", "yesterday")),
            "attribute 'time' is not an RFC 3339 timestamp: 'yesterday'");
  EXPECT_EQ(check(with("source", "my service")),
            "attribute 'source' is not a URI reference: 'my service'");
  EXPECT_EQ(check(with("source", "/k\xc3\xb6ln")),
            "attribute 'source' is not a URI reference: '/k\xc3\xb6ln'");
  EXPECT_EQ(check(with("dataschema", "https://x/%zz")),
            "attribute 'dataschema' is not a URI reference: 'https://x/%zz'");
  for (const char* ok : {"urn:x:y", "/a%20b", "https://u@h:1/p?q=1&r=[2]#f", "rel/path"}) {
    EXPECT_EQ(check(with("source", ok)), "") << ok;
  }
  EXPECT_EQ(check(with("data_base64", "AAE")), "data_base64 is not valid base64");
  EXPECT_EQ(check(with("data_base64", "AA=A")), "data_base64 is not valid base64");
  EXPECT_EQ(check(with("data_base64", "AA!A")), "data_base64 is not valid base64");
  EXPECT_EQ(check(with("data_base64", 12)), "data_base64 is not valid base64");
  EXPECT_EQ(check(with({{"data", 1}, {"data_base64", "AA=="}})),
            "a CloudEvent cannot have both data and data_base64");
}

TEST(CloudEventsCheck, ExtensionsNeedValidNamesAndScalarValues) {
  EXPECT_EQ(check(with("my_ext", "x")),
            "'my_ext' is not a valid CloudEvents attribute name (lower-case letters a-z and "
            "digits only)");
  EXPECT_EQ(check(with("Tenant", "x")),
            "'Tenant' is not a valid CloudEvents attribute name (lower-case letters a-z and "
            "digits only)");
  EXPECT_EQ(check(with("ext", Json::object())),
            "extension 'ext' must be a string, an integer or a boolean, not object");
  EXPECT_EQ(check(with("ext", 1.5)),
            "extension 'ext' must be a string, an integer or a boolean, not number");
  EXPECT_EQ(check(with("ext1", -3)), "");
  EXPECT_EQ(check(with("ext1", false)), "");
}

TEST(CloudEventsEncoding, PercentEncodingFollowsTheHttpBinding) {
  EXPECT_EQ(percent_encode("plain/ascii-1.0~!#$&'()*+,:;<=>?@[]^_`{|}"),
            "plain/ascii-1.0~!#$&'()*+,:;<=>?@[]^_`{|}");
  EXPECT_EQ(percent_encode("a b\"c%d"), "a%20b%22c%25d");
  EXPECT_EQ(percent_encode("Grüße\n\x7f"), "Gr%C3%BC%C3%9Fe%0A%7F");
}

TEST(CloudEventsEncoding, Base64IsStrict) {
  EXPECT_EQ(base64_decode(""), "");
  EXPECT_EQ(base64_decode("AAEC/v8="), std::string("\x00\x01\x02\xfe\xff", 5));
  EXPECT_EQ(base64_decode("aGk="), "hi");
  EXPECT_EQ(base64_decode("aGVsbG8h"), "hello!");
  for (const char* bad : {"a", "aGk", "aGk==", "a===", "=aGk", "aG=k", "aG k", "aGk=\n", "a-_b"}) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
  const std::string bytes("\x00\xff\x10 text", 8);
  EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes);
}

TEST(CloudEventsEncoding, TimestampsAndMediaTypes) {
  for (const char* ok : {"2026-01-02T03:04:05Z", "2026-01-02t03:04:05.1z",
                         "2026-12-31T23:59:60.123456789-08:00", "1985-04-12T23:20:50.52+00:00"}) {
    EXPECT_TRUE(is_rfc3339(ok)) << ok;
  }
  for (const char* bad :
       {"", "2026-01-02", "2026-01-02 03:04:05Z", "2026-13-02T03:04:05Z", "2026-01-02T03:04:05",
        "2026-01-02T03:04:05.Z", "2026-01-02T03:04:05+0100", "2026-01-02T03:04:05Zjunk"}) {
    EXPECT_FALSE(is_rfc3339(bad)) << bad;
  }
  EXPECT_TRUE(is_json_media_type("application/json"));
  EXPECT_TRUE(is_json_media_type(" Application/JSON ; charset=utf-8"));
  EXPECT_TRUE(is_json_media_type("application/vnd.api+json"));
  EXPECT_TRUE(is_json_media_type("text/json"));
  EXPECT_FALSE(is_json_media_type("application/jsonx"));
  EXPECT_FALSE(is_json_media_type("+json"));
  EXPECT_FALSE(is_json_media_type("text/plain"));
}

// from_binary over (name, value) pairs; returns the structured form's text, or the error.
std::string binary(std::vector<Header> headers, std::string_view content_type,
                   std::string_view body) {
  Json out;
  std::string error = from_binary(headers, content_type, body, &out);
  return error.empty() ? out.dump() : "error: " + error;
}

const std::vector<Header> kRequiredHeaders = {
    {"ce-type", "t"}, {"ce-id", "a"}, {"ce-specversion", "1.0"}, {"ce-source", "/s"}};

std::vector<Header> headers_plus(std::vector<Header> more) {
  std::vector<Header> h = kRequiredHeaders;
  h.insert(h.end(), more.begin(), more.end());
  return h;
}

TEST(CloudEventsBinary, BuildsTheStructuredForm) {
  EXPECT_EQ(binary(kRequiredHeaders, "", ""),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t"})");
  EXPECT_EQ(binary(headers_plus({{"ce-subject", "Grüße x"},
                                 {"ce-time", "2026-01-02T03:04:05Z"},
                                 {"ce-tenant", "acme"}}),
                   "application/json; charset=utf-8", R"({"n": [1, 2]})"),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t","subject":"Grüße x",)"
            R"("time":"2026-01-02T03:04:05Z","tenant":"acme",)"
            R"("datacontenttype":"application/json; charset=utf-8","data":{"n":[1,2]}})");
  // JSON data may be any JSON value.
  EXPECT_EQ(binary(kRequiredHeaders, "application/cloudevents-data+json", "\"x\""),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t",)"
            R"("datacontenttype":"application/cloudevents-data+json","data":"x"})");
  // Text data is a string; bytes are data_base64.
  EXPECT_EQ(binary(kRequiredHeaders, "text/plain", "héllo\r\n\twörld"),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t",)"
            R"("datacontenttype":"text/plain","data":"héllo\r\n\twörld"})");
  EXPECT_EQ(binary(kRequiredHeaders, "application/octet-stream", std::string("\x00\x01\xfe", 3)),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t",)"
            R"("datacontenttype":"application/octet-stream","data_base64":"AAH+"})");
  EXPECT_EQ(binary(kRequiredHeaders, "text/plain", "\xff not utf-8"),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t",)"
            R"("datacontenttype":"text/plain","data_base64":"/yBub3QgdXRmLTg="})");
  EXPECT_EQ(binary(kRequiredHeaders, "", "bell\x07"),
            R"({"specversion":"1.0","id":"a","source":"/s","type":"t","data_base64":"YmVsbAc="})");
}

TEST(CloudEventsBinary, RejectsWhatIsNotACloudEvent) {
  EXPECT_EQ(binary({{"ce-id", "a"}}, "", ""),
            "error: missing required headers: ce-source, ce-specversion, ce-type");
  EXPECT_EQ(binary({{"ce-id", "a"}, {"ce-source", "s"}, {"ce-type", "t"}}, "", ""),
            "error: missing required header: ce-specversion");
  EXPECT_EQ(binary(headers_plus({{"ce-specversion", "1.0"}}), "", ""),
            "error: header ce-specversion appears more than once");
  EXPECT_EQ(binary(headers_plus({{"ce-my-ext", "x"}}), "", ""),
            "error: header ce-my-ext: 'my-ext' is not a valid CloudEvents attribute name "
            "(lower-case letters a-z and digits only)");
  EXPECT_EQ(binary(headers_plus({{"ce-data", "x"}}), "", ""),
            "error: header ce-data: 'data' is not a valid CloudEvents attribute name "
            "(lower-case letters a-z and digits only)");
  EXPECT_EQ(binary(headers_plus({{"ce-datacontenttype", "text/plain"}}), "", ""),
            "error: header ce-datacontenttype: in binary mode the data's type is the Content-Type");
  EXPECT_EQ(binary(headers_plus({{"ce-subject", "\xc3\x28"}}), "", ""),  // e.g. sent as %C3%28
            "error: header ce-subject: the value is not UTF-8");
  EXPECT_EQ(
      binary({{"ce-id", "a"}, {"ce-source", "s"}, {"ce-type", "t"}, {"ce-specversion", "0.3"}}, "",
             ""),
      "error: specversion must be \"1.0\", not \"0.3\"");
  EXPECT_EQ(binary(headers_plus({{"ce-time", "now"}}), "", ""),
            "error: attribute 'time' is not an RFC 3339 timestamp: 'now'");
  EXPECT_EQ(binary(kRequiredHeaders, "application/json", "{oops"),
            "error: the body is not valid JSON, but its Content-Type is application/json");
}

evroute::Event event(std::string_view id, std::string_view payload) {
  // 2026-01-02T03:04:05.000006Z
  return evroute::Event::make(id, payload, {}, evroute::Event::TimePoint(1767323045000006us));
}

const Options kOptions{.source = "/evroute", .default_type = "x.default"};

TEST(CloudEventsOut, StructuredSendsACloudEventAsItIsAndWrapsOtherEvents) {
  const std::string ce =
      R"({"specversion":"1.0","id":"a","source":"/s","type":"t","data":{"n":1.50}})";
  auto m = to_http(event("a", ce), Mode::kStructured, kOptions);
  EXPECT_EQ(m.content_type, "application/cloudevents+json");
  EXPECT_TRUE(m.headers.empty());
  EXPECT_EQ(m.body, ce);  // the exact bytes

  m = to_http(event("e1", R"({"id":"e1","type":"order.created","n":1})"), Mode::kStructured,
              kOptions);
  EXPECT_EQ(m.body, R"({"specversion":"1.0","id":"e1","source":"/evroute","type":"order.created",)"
                    R"("time":"2026-01-02T03:04:05.000006Z","datacontenttype":"application/json",)"
                    R"("data":{"id":"e1","type":"order.created","n":1}})");
  // No string type: the default. An almost-CloudEvent (bad time) is wrapped too.
  EXPECT_EQ(as_cloudevent(event("e2", R"({"id":"e2","type":5})"), kOptions)["type"], "x.default");
  const Json almost = as_cloudevent(
      event("a", R"({"specversion":"1.0","id":"a","source":"/s","type":"t","time":"no"})"),
      kOptions);
  EXPECT_EQ(almost["source"], "/evroute");
  EXPECT_EQ(almost["data"]["time"], "no");
  // A payload that is not JSON (library users) becomes text data.
  EXPECT_EQ(as_cloudevent(event("r", "raw bytes"), kOptions)["data"], "raw bytes");
  EXPECT_EQ(as_cloudevent(event("r", "raw bytes"), kOptions)["datacontenttype"], "text/plain");
  EXPECT_NE(to_http(event("r", "not \xff UTF-8"), Mode::kStructured, kOptions)
                .body.find("\"data\":\"not \xef\xbf\xbd UTF-8\""),  // U+FFFD
            std::string::npos);
}

std::string header(const HttpMessage& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return "<none>";
}

TEST(CloudEventsOut, BinaryPutsAttributesInHeadersAndDataInTheBody) {
  auto m = to_http(event("a", R"({"specversion":"1.0","id":"a","source":"/s","type":"t",)"
                              R"("subject":"Grüße \"x\" 100%","n":7,"ok":true,"gone":null,)"
                              R"("datacontenttype":"application/json","data":{"n":1}})"),
                   Mode::kBinary, kOptions);
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_EQ(m.body, R"({"n":1})");
  EXPECT_EQ(m.headers, (std::vector<Header>{{"ce-specversion", "1.0"},
                                            {"ce-id", "a"},
                                            {"ce-source", "/s"},
                                            {"ce-type", "t"},
                                            {"ce-subject", "Gr%C3%BC%C3%9Fe%20%22x%22%20100%25"},
                                            {"ce-n", "7"},
                                            {"ce-ok", "true"}}));

  // Text data goes as is; a JSON string as JSON; no datacontenttype means JSON.
  m = to_http(event("a", with({{"datacontenttype", "text/csv"}, {"data", "a,b\n"}}).dump()),
              Mode::kBinary, kOptions);
  EXPECT_EQ(m.content_type, "text/csv");
  EXPECT_EQ(m.body, "a,b\n");
  m = to_http(event("a", with("data", "a,b").dump()), Mode::kBinary, kOptions);
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_EQ(m.body, "\"a,b\"");
  // data_base64 is sent as bytes (octet-stream unless said otherwise).
  m = to_http(event("a", with("data_base64", "AAH+").dump()), Mode::kBinary, kOptions);
  EXPECT_EQ(m.content_type, "application/octet-stream");
  EXPECT_EQ(m.body, std::string("\x00\x01\xfe", 3));
  // No data: no body, no Content-Type.
  m = to_http(event("a", kMinimal.dump()), Mode::kBinary, kOptions);
  EXPECT_EQ(m.content_type, "");
  EXPECT_EQ(m.body, "");
}

TEST(CloudEventsOut, BinaryWrapsAPlainEventWithItsPayloadAsTheBody) {
  const std::string payload = R"({"id":"e1","type":"order.created","price":1.50,"s":"\u00e9"})";
  auto m = to_http(event("e1", payload), Mode::kBinary, kOptions);
  EXPECT_EQ(m.content_type, "application/json");
  EXPECT_EQ(m.body, payload);  // the event's own bytes, not a re-serialization
  EXPECT_EQ(header(m, "ce-id"), "e1");
  EXPECT_EQ(header(m, "ce-type"), "order.created");
  EXPECT_EQ(header(m, "ce-source"), "/evroute");
  EXPECT_EQ(header(m, "ce-specversion"), "1.0");
  EXPECT_EQ(header(m, "ce-time"), "2026-01-02T03:04:05.000006Z");
  EXPECT_EQ(header(m, "ce-datacontenttype"), "<none>");
}

// A poison pill: an event stored by an older evrouted whose payload nests too deep to render. It
// must come out as a reason (the sink dead-letters it), never as a crash in serialization.
TEST(CloudEventsOut, AnEventNestedTooDeepIsAnErrorNotACrash) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string ce =
      R"({"specversion":"1.0","id":"p","source":"/s","type":"t","data":)" + deep + "}";
  for (Mode mode : {Mode::kStructured, Mode::kBinary}) {
    for (const std::string& payload : {ce, R"({"x":)" + deep + "}"}) {
      const HttpMessage m = to_http(event("p", payload), mode, Options{});
      EXPECT_NE(m.error.find("nests deeper than 64 levels"), std::string::npos) << m.error;
      EXPECT_TRUE(m.body.empty());
    }
  }
  std::string why;
  EXPECT_TRUE(as_cloudevent(event("p", ce), Options{}, &why).is_null());
  EXPECT_NE(why.find("nests deeper"), std::string::npos);

  HttpSinkConfig config;
  ASSERT_TRUE(parse_webhook_url("http://127.0.0.1:9/hooks", &config).is_ok());
  config.cloudevents_mode = Mode::kBinary;
  const WebhookRequest req = build_webhook_request(config, event("p", ce), {});
  EXPECT_NE(req.error.find("nests deeper"), std::string::npos) << req.error;
}

// Found by fuzz_cloudevents_out: a wrapped event's `type` becomes the CloudEvent's type only when
// a CloudEvent can carry it (not empty, no control characters); else the default type.
TEST(CloudEventsOut, AWrappedTypeWithControlCharactersFallsBackToTheDefault) {
  for (const char* payload : {R"({"id":"n1","type":"a\u000a"})", R"({"id":"n1","type":""})"}) {
    const Json ce = as_cloudevent(event("n1", payload), Options{});
    EXPECT_EQ(ce["type"], "evroute.event") << payload;
    EXPECT_EQ(check(ce), "") << payload;
  }
}

// The last line of defence against header injection: whatever an event holds, no header value
// written may hold CR, LF or NUL (ingest rejects such ids; an older stored event may have one).
TEST(WebhookRequest, AnEventIdWithCrLfOrNulIsNeverSent) {
  evtest::Receiver hook;
  HttpSinkConfig config;
  ASSERT_TRUE(parse_webhook_url(hook.url(), &config).is_ok());
  HttpSink sink(config);
  for (const std::string& id :
       {std::string("a\r\nX-Injected: 1"), std::string("a\nb"), std::string("a\0b", 3)}) {
    const evroute::Status s = sink.write(event(id, R"({"x":1})"));
    EXPECT_EQ(s.code(), evroute::Code::kRejected) << s;
    EXPECT_NE(s.message().find("header 'webhook-id'"), std::string::npos) << s;
  }
  // Binary-mode CloudEvents percent-encode their ce-* values: CR LF inside is harmless there.
  config.cloudevents_mode = Mode::kBinary;
  const WebhookRequest ce =
      build_webhook_request(config, event("ok", with("subject", "a\r\nb").dump()), {});
  EXPECT_EQ(ce.error, "");
  for (const auto& [name, value] : ce.headers) {
    EXPECT_EQ(value.find_first_of(std::string_view("\r\n\0", 3)), std::string::npos) << name;
  }
  EXPECT_TRUE(sink.write(event("clean", R"({"x":1})")).is_ok());
  EXPECT_EQ(hook.requests().size(), 1u);  // only the clean one arrived
  sink.close();
}

}  // namespace
}  // namespace evrouted::cloudevents

namespace evrouted {
namespace {

const std::vector<std::string> kFields = {"type", "tenant"};

TEST(IngestCloudEvents, ContentTypes) {
  EXPECT_EQ(body_format("application/cloudevents+json"), BodyFormat::kCloudEvent);
  EXPECT_EQ(body_format("Application/CloudEvents+JSON; charset=UTF-8"), BodyFormat::kCloudEvent);
  EXPECT_EQ(body_format("application/cloudevents-batch+json"), BodyFormat::kCloudEventBatch);
  EXPECT_FALSE(body_format("application/cloudevents+avro"));
  EXPECT_FALSE(body_format("application/cloudevents"));
}

TEST(IngestCloudEvents, StructuredKeepsTheEventAsPayloadWithItsIdAndAttributes) {
  const std::string text =
      R"({"specversion":"1.0","id":"ce-1","source":"/s","type":"order.created","tenant":"acme"})";
  auto r = parse_events("  " + text + "\n", BodyFormat::kCloudEvent, kFields);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].id(), "ce-1");
  EXPECT_EQ(r.events[0].payload(), text);
  EXPECT_EQ(r.events[0].type(), "order.created");
  EXPECT_EQ(r.events[0].attribute("tenant"), "acme");

  EXPECT_EQ(parse_events(R"({"id":"x","type":"t"})", BodyFormat::kCloudEvent, kFields).error,
            "missing required attributes: source, specversion");
  EXPECT_EQ(parse_events("[]", BodyFormat::kCloudEvent, kFields).error,
            "application/cloudevents+json takes one CloudEvent object, not array (send several "
            "as application/cloudevents-batch+json)");
}

TEST(IngestCloudEvents, BatchIsAcceptedOrRejectedWhole) {
  auto r = parse_events(
      R"([{"specversion":"1.0","id":"a","source":"/s","type":"t1"},
          {"specversion":"1.0","id":"b","source":"/s","type":"t2","data":[1]}])",
      BodyFormat::kCloudEventBatch, kFields);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1].id(), "b");
  EXPECT_EQ(r.events[1].type(), "t2");
  EXPECT_EQ(r.events[1].payload(),
            R"({"specversion":"1.0","id":"b","source":"/s","type":"t2","data":[1]})");

  r = parse_events(R"([{"specversion":"1.0","id":"a","source":"/s","type":"t"},
                       {"specversion":"1.0","id":"b","source":"/s","type":"t","bad_name":1}])",
                   BodyFormat::kCloudEventBatch, kFields);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.error,
            "element 1: 'bad_name' is not a valid CloudEvents attribute name (lower-case letters "
            "a-z and digits only)");
  EXPECT_EQ(parse_events("[]", BodyFormat::kCloudEventBatch, kFields).events.size(), 0u);
  EXPECT_EQ(parse_events(R"({"specversion":"1.0","id":"a","source":"/s","type":"t"})",
                         BodyFormat::kCloudEventBatch, kFields)
                .error,
            "application/cloudevents-batch+json takes a JSON array of CloudEvents, not object");
}

TEST(IngestCloudEvents, BinaryModeBecomesTheStructuredForm) {
  const std::vector<cloudevents::Header> headers = {{"ce-id", "b-1"},
                                                    {"ce-source", "/s"},
                                                    {"ce-type", "order.paid"},
                                                    {"ce-specversion", "1.0"},
                                                    {"ce-tenant", "ac me"}};
  auto r = parse_binary_cloudevent(headers, "application/json", R"({"n":1})", kFields);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].id(), "b-1");
  EXPECT_EQ(r.events[0].type(), "order.paid");
  EXPECT_EQ(r.events[0].attribute("tenant"), "ac me");
  EXPECT_EQ(r.events[0].payload(),
            R"({"specversion":"1.0","id":"b-1","source":"/s","type":"order.paid",)"
            R"("tenant":"ac me","datacontenttype":"application/json","data":{"n":1}})");

  const std::vector<cloudevents::Header> long_id = {{"ce-id", std::string(1025, 'x')},
                                                    {"ce-source", "/s"},
                                                    {"ce-type", "t"},
                                                    {"ce-specversion", "1.0"}};
  r = parse_binary_cloudevent(long_id, "", "", kFields);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.error, "field \"id\" is longer than 1024 bytes");
}

// parse_http_sink over YAML text; every error as "FILE:LINE:COL: message".
std::vector<std::string> sink_errors(const std::string& yaml,
                                     std::unique_ptr<SinkSpec>* spec = nullptr) {
  ConfigErrors errors("t.yaml");
  ConfigReader reader(YAML::Load(yaml), errors, "sink 'a'");
  auto parsed = parse_http_sink(reader);
  reader.finish();
  if (spec) *spec = std::move(parsed);
  std::vector<std::string> out;
  for (const auto& e : errors.all()) out.push_back(e.to_string());
  return out;
}

TEST(HttpSinkCloudEventsConfig, FormatAndOptions) {
  using V = std::vector<std::string>;
  EXPECT_EQ(sink_errors("url: http://h/\nformat: json\n"), V{});
  EXPECT_EQ(sink_errors("url: http://h/\nformat: cloudevents-structured\n"
                        "cloudevents: { source: /me, default_type: x.y }\n"),
            V{});
  EXPECT_EQ(sink_errors("url: http://h/\nformat: cloudevents\n"),
            V{"t.yaml:2:9: sink 'a': 'format' must be one of json, cloudevents-structured, "
              "cloudevents-binary, not 'cloudevents'"});
  EXPECT_EQ(sink_errors("url: http://h/\ncloudevents: { source: /me }\n"),
            V{"t.yaml:2:14: sink 'a': 'cloudevents' applies to format cloudevents-structured or "
              "cloudevents-binary only"});
  EXPECT_EQ(sink_errors("url: http://h/\nformat: cloudevents-binary\n"
                        "cloudevents: { source: \"\", kind: x }\n"),
            (V{"t.yaml:3:24: sink 'a': cloudevents.source must not be empty",
               "t.yaml:3:28: unknown key 'kind' in sink 'a'.cloudevents (known keys: "
               "default_type, source)"}));
  EXPECT_EQ(sink_errors("url: http://h/\nformat: cloudevents-binary\n"
                        "cloudevents: { source: my service }\n"),
            V{"t.yaml:3:24: sink 'a': cloudevents.source must be a URI reference, e.g. /evroute "
              "or urn:evroute, not 'my service'"});
  EXPECT_EQ(sink_errors("url: http://h/\nformat: cloudevents-binary\nheaders: { CE-Id: x }\n"),
            V{"t.yaml:3:10: sink 'a': header 'CE-Id' is set by the http sink itself in format "
              "cloudevents-binary"});
}

// The sink end to end against a real receiver: the CloudEvent goes out in binary mode, the
// webhook headers stay, and the signature covers the body actually sent.
TEST(HttpSinkCloudEvents, BinaryModeRequest) {
  evtest::Receiver hook;
  std::unique_ptr<SinkSpec> spec;
  ASSERT_EQ(sink_errors("url: " + hook.url() +
                            "\nformat: cloudevents-binary\nsecret: whsec_c2VjcmV0\n"
                            "cloudevents: { source: /me }\n",
                        &spec),
            std::vector<std::string>{});
  auto sink = spec->build().sink;
  ASSERT_TRUE(sink->write(evroute::Event::make("e1", R"({"id":"e1","type":"a.b"})")).is_ok());
  ASSERT_EQ(hook.requests().size(), 1u);
  const auto r = hook.requests()[0];
  EXPECT_EQ(r.body, R"({"id":"e1","type":"a.b"})");
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("ce-id"), "e1");
  EXPECT_EQ(r.header("ce-type"), "a.b");
  EXPECT_EQ(r.header("ce-source"), "/me");
  EXPECT_EQ(r.header("webhook-id"), "e1");
  EXPECT_EQ(r.header("webhook-signature"),
            webhook_signature({"secret"}, "e1", r.header("webhook-timestamp"), r.body));
  sink->close();
}

}  // namespace
}  // namespace evrouted
