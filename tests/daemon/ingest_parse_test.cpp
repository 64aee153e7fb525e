// Ingest body parsing: formats, ids, attributes and precise errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ingest.h"

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

}  // namespace
}  // namespace evrouted
