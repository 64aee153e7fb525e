// Ingest body parsing: formats, ids, attributes and precise errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ingest.h"
#include "json_parse.h"

namespace evrouted {
namespace {

using Json = nlohmann::ordered_json;  // keeps member order, as ingest does
const std::vector<std::string> kFields = {"type", "region", "amount"};

TEST(BodyFormat, MediaTypes) {
  EXPECT_EQ(body_format("application/json"), BodyFormat::kJson);
  EXPECT_EQ(body_format("Application/JSON; charset=utf-8"), BodyFormat::kJson);
  EXPECT_EQ(body_format("application/x-ndjson"), BodyFormat::kNdjson);
  EXPECT_EQ(body_format("application/ndjson"), BodyFormat::kNdjson);
  EXPECT_FALSE(body_format("text/plain"));
  EXPECT_FALSE(body_format(""));
  EXPECT_FALSE(body_format("application/jsonx"));
}

TEST(ParseEvents, SingleObjectKeepsItsTextAndGetsAnIdFirst) {
  auto r = parse_events(R"(  {"type":"a.b", "x": 1}  )", BodyFormat::kJson, kFields);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 1u);
  const auto& e = r.events[0];
  EXPECT_EQ(e.id().size(), 36u);
  EXPECT_EQ(e.payload(), R"({"id":")" + std::string(e.id()) + R"(","type":"a.b", "x": 1})");
  EXPECT_EQ(e.type(), "a.b");
}

TEST(ParseEvents, EmptyObjectGetsJustAnId) {
  auto r = parse_events("{}", BodyFormat::kJson, kFields);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.events[0].payload(), R"({"id":")" + std::string(r.events[0].id()) + R"("})");
}

TEST(ParseEvents, ClientIdIsKeptAndPayloadUntouched) {
  auto r = parse_events(R"({"id":"abc","type":"t"})", BodyFormat::kJson, kFields);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.events[0].id(), "abc");
  EXPECT_EQ(r.events[0].payload(), R"({"id":"abc","type":"t"})");
}

TEST(ParseEvents, MultiLineObjectIsCompacted) {
  auto r = parse_events("{\n  \"id\": \"a\",\n  \"v\": [1, 2]\n}", BodyFormat::kJson, kFields);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.events[0].payload(), R"({"id":"a","v":[1,2]})");
}

TEST(ParseEvents, ArrayPreservesOrderAndMemberOrder) {
  auto r = parse_events(R"([{"z":1,"a":2},{"id":"two"}])", BodyFormat::kJson, kFields);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.events.size(), 2u);
  const Json first = Json::parse(r.events[0].payload());
  EXPECT_EQ(first.begin().key(), "id");
  EXPECT_EQ(r.events[0].payload().substr(r.events[0].payload().find(",")), R"(,"z":1,"a":2})");
  EXPECT_EQ(r.events[1].id(), "two");
}

TEST(ParseEvents, AttributesHoldFilteredFieldsAsText) {
  auto r = parse_events(R"({"type":"t","region":"eu","amount":12.5,"other":"no","ok":true})",
                        BodyFormat::kJson, kFields);
  ASSERT_EQ(r.error, "");
  const auto& e = r.events[0];
  EXPECT_EQ(e.attribute("region"), "eu");
  EXPECT_EQ(e.attribute("amount"), "12.5");
  EXPECT_FALSE(e.attribute("other"));
}

TEST(ParseEvents, NdjsonSkipsBlankLinesAndNamesTheBadLine) {
  auto r = parse_events("{\"a\":1}\r\n\n{\"a\":2}\n", BodyFormat::kNdjson, kFields);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.events.size(), 2u);
  auto bad = parse_events("{\"a\":1}\n\n[1]\n", BodyFormat::kNdjson, kFields);
  EXPECT_EQ(bad.error, "line 3: not a JSON object");
  EXPECT_TRUE(bad.events.empty());
}

TEST(ParseEvents, ErrorsRejectTheWholeBody) {
  struct Case {
    std::string body;
    BodyFormat format;
    std::string error_prefix;
  } cases[] = {
      {"", BodyFormat::kJson, "empty body"},
      {"   \n", BodyFormat::kNdjson, "empty body"},
      {"{\"a\":", BodyFormat::kJson, "malformed JSON: parse error at line 1, column 6"},
      {"\"str\"", BodyFormat::kJson,
       "body must be a JSON object or an array of objects, not string"},
      {"[{}, 3]", BodyFormat::kJson, "element 1: not a JSON object"},
      {"[{}, {\"id\": 3}]", BodyFormat::kJson, "element 1: field \"id\" must be a string"},
      {"{\"id\": \"\"}", BodyFormat::kJson, "field \"id\" must not be empty"},
      {"{\"id\":\"" + std::string(2000, 'x') + "\"}", BodyFormat::kJson, "field \"id\" is longer"},
  };
  for (const auto& c : cases) {
    auto r = parse_events(c.body, c.format, kFields);
    EXPECT_EQ(r.error.rfind(c.error_prefix, 0), 0u) << c.body << " -> " << r.error;
    EXPECT_TRUE(r.events.empty());
  }
}

// Hostile bodies: each is a 400 with a reason, never an exception, and nothing accepted can later
// fail to serialize.
std::string nested(std::size_t levels, std::string_view inner = "1") {
  return std::string(levels, '[') + std::string(inner) + std::string(levels, ']');
}

TEST(ParseEventsHostile, NestingIsBoundedInEveryFormat) {
  // The event object is level 1: 63 arrays inside it are the most an event may hold.
  const std::string ok = "{\"a\":" + nested(kMaxEventDepth - 1) + "}";
  for (BodyFormat f : {BodyFormat::kJson, BodyFormat::kNdjson}) {
    auto r = parse_events(ok, f, kFields);
    ASSERT_EQ(r.error, "");
    EXPECT_EQ(r.events[0].payload().find('\n'), std::string_view::npos);
  }
  auto in_array = parse_events("[" + ok + "]", BodyFormat::kJson, kFields);
  EXPECT_EQ(in_array.error, "");
  const std::string deep = "{\"a\":" + nested(kMaxEventDepth) + "}";
  const std::string huge = "{\"a\":" + nested(100000) + "}";  // crashed evrouted before
  for (const std::string& body :
       {deep, huge, "[" + deep + "]", "{\n\"a\":" + nested(100000) + "}", "[" + huge + "]"}) {
    for (BodyFormat f : {BodyFormat::kJson, BodyFormat::kNdjson}) {
      if (f == BodyFormat::kNdjson && body.find('\n') != std::string::npos) continue;
      auto r = parse_events(body, f, kFields);
      EXPECT_NE(r.error.find("nested deeper than 64 levels"), std::string::npos)
          << body.substr(0, 80) << " fmt " << int(f) << ": " << r.error;
      EXPECT_TRUE(r.events.empty());
    }
  }
  // An NDJSON line holding \r (compacted, so serialized) and a multi-line object.
  auto cr = parse_events("{\"a\":" + nested(100000) + "}\r\n", BodyFormat::kNdjson, kFields);
  EXPECT_NE(cr.error.find("nested deeper"), std::string::npos);
}

TEST(ParseEventsHostile, NumbersOutOfRangeAndBadUtf8AreMalformedJson) {
  for (const std::string& body :
       {std::string(R"({"n":1e99999})"), "{\"n\":" + std::string(400, '9') + "}",
        std::string("{\"s\":\"\xff\xfe\"}"), std::string("{\"s\":\"\xc0\xaf\"}")}) {
    auto r = parse_events(body, BodyFormat::kJson, kFields);
    EXPECT_EQ(r.error.rfind("malformed JSON", 0), 0u) << r.error;
    // The error quotes what it read, but is UTF-8 itself, so it can be sent as JSON.
    EXPECT_NO_THROW((void)nlohmann::json(r.error).dump()) << r.error;
  }
}

TEST(ParseEventsHostile, ByteOrderMarkIsDropped) {
  const std::string bom = "\xEF\xBB\xBF";
  for (BodyFormat f : {BodyFormat::kJson, BodyFormat::kNdjson}) {
    auto gen = parse_events(bom + R"({"type":"t"})", f, kFields);
    ASSERT_EQ(gen.error, "");
    EXPECT_EQ(gen.events[0].payload(),
              R"({"id":")" + std::string(gen.events[0].id()) + R"(","type":"t"})");
    auto own = parse_events(bom + R"({"id":"a"})", f, kFields);
    ASSERT_EQ(own.error, "");
    EXPECT_EQ(own.events[0].payload(), R"({"id":"a"})");
  }
  auto arr = parse_events(bom + R"([{"id":"a"}])", BodyFormat::kJson, kFields);
  ASSERT_EQ(arr.error, "");
  EXPECT_EQ(arr.events[0].payload(), R"({"id":"a"})");
  // Found by fuzz_cloudevents_out: nlohmann skips a BOM at the start of any text it parses, so a
  // BOM opening a later NDJSON line was accepted and then spliced into a broken payload.
  auto later = parse_events("{\"a\":1}\n" + bom + "{\"b\":2}\n", BodyFormat::kNdjson, kFields);
  EXPECT_EQ(later.error,
            "line 2: malformed JSON: a byte order mark is allowed only at the start "
            "of the body");
}

// Found by fuzz_cloudevents_out: nlohmann takes a NUL byte for the end of its input, so what
// followed it was accepted unparsed and passed on in the payload.
TEST(ParseEventsHostile, ANulByteIsMalformedNotTheEndOfTheText) {
  for (BodyFormat f : {BodyFormat::kJson, BodyFormat::kNdjson}) {
    auto r = parse_events(std::string("{\"a\":1}\0garbage", 16), f, kFields);
    EXPECT_NE(r.error.find("malformed JSON: a NUL byte at offset 7"), std::string::npos) << r.error;
    EXPECT_TRUE(r.events.empty());
  }
}

TEST(ParseEventsHostile, DuplicateIdIsRejected) {
  for (const auto& [body, format] : std::vector<std::pair<std::string, BodyFormat>>{
           {R"({"id":"A","id":"B"})", BodyFormat::kJson},
           {R"({"id":"A","x":1,"\u0069d":"B"})", BodyFormat::kJson},
           {R"([{"id":"A"},{"id":"B","id":"C"}])", BodyFormat::kJson},
           {"{\"id\":\"A\"}\n{\"id\":\"A\",\"id\":\"B\"}\n", BodyFormat::kNdjson}}) {
    auto r = parse_events(body, format, kFields);
    EXPECT_NE(r.error.find("duplicate field \"id\""), std::string::npos) << body << ": " << r.error;
    EXPECT_TRUE(r.events.empty());
  }
  // "id" keys deeper inside, and the same id in two events, are fine.
  auto ok = parse_events(R"([{"id":"A","x":{"id":1,"y":{"id":2}}},{"id":"A"}])", BodyFormat::kJson,
                         kFields);
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.events.size(), 2u);
}

TEST(ParseEventsHostile, IdsWithControlCharactersAreRejected) {
  for (const char* id :
       {"a\\r\\nX-Injected: 1", "a\\u0000b", "tab\\there", "del\\u007f", "c1\\u0085"}) {
    auto r = parse_events(std::string("{\"id\":\"") + id + "\"}", BodyFormat::kJson, kFields);
    EXPECT_NE(r.error.find("must not contain control characters"), std::string::npos)
        << id << ": " << r.error;
  }
  auto ok = parse_events(R"({"id":"ünïcødé-✓ id/with:punctuation"})", BodyFormat::kJson, kFields);
  EXPECT_EQ(ok.error, "");
}

TEST(ParseEventsHostile, OversizedFilteredFieldIsA400NotAnException) {
  const std::string big(70000, 'x');
  auto r = parse_events("{\"type\":\"" + big + "\"}", BodyFormat::kJson, kFields);
  EXPECT_NE(r.error.find("field \"type\" is longer than 65535 bytes"), std::string::npos)
      << r.error.substr(0, 200);
}

TEST(ParseEventsHostile, CloudEventsAreBoundedToo) {
  const std::string ce =
      R"({"specversion":"1.0","id":"c1","source":"/s","type":"t","data":)" + nested(100000) + "}";
  auto structured = parse_events(ce, BodyFormat::kCloudEvent, kFields);
  EXPECT_NE(structured.error.find("nested deeper"), std::string::npos);
  auto batch = parse_events("[" + ce + "]", BodyFormat::kCloudEventBatch, kFields);
  EXPECT_NE(batch.error.find("nested deeper"), std::string::npos);

  const std::vector<cloudevents::Header> headers = {
      {"ce-specversion", "1.0"}, {"ce-id", "b1"}, {"ce-source", "/s"}, {"ce-type", "t"}};
  auto binary = parse_binary_cloudevent(headers, "application/json", nested(100000), kFields);
  EXPECT_NE(binary.error.find("nested deeper"), std::string::npos) << binary.error;
  auto inner_ok =
      parse_binary_cloudevent(headers, "application/json", nested(kMaxEventDepth - 1), kFields);
  EXPECT_EQ(inner_ok.error, "");

  // A ce-id with CR LF (the server percent-decodes %0D%0A before this) and a Content-Type with
  // a byte that is not UTF-8.
  const std::vector<cloudevents::Header> crlf = {{"ce-specversion", "1.0"},
                                                 {"ce-id", "x\r\nX-Evil: 1"},
                                                 {"ce-source", "/s"},
                                                 {"ce-type", "t"}};
  auto injected = parse_binary_cloudevent(crlf, "text/plain", "hi", kFields);
  EXPECT_NE(injected.error.find("control characters"), std::string::npos) << injected.error;
  auto bad_type = parse_binary_cloudevent(headers, "text/plain\xff", "hi", kFields);
  EXPECT_NE(bad_type.error.find("not printable ASCII"), std::string::npos) << bad_type.error;
  // Structured mode: an attribute holding CR LF.
  auto structured_crlf = parse_events(
      R"({"specversion":"1.0","id":"c1","source":"/s","type":"t","datacontenttype":"a\r\nb: c"})",
      BodyFormat::kCloudEvent, kFields);
  EXPECT_NE(structured_crlf.error.find("control characters"), std::string::npos);
}

}  // namespace
}  // namespace evrouted
