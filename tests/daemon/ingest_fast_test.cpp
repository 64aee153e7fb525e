// Ingest's fast path (simdjson, for one-line objects) against the general path (nlohmann): on every
// body, parse_events and parse_events_general must give the same error, or the same events (ids,
// payloads, attributes), only generated ids differing. The cases are the rules the fast path must
// leave to the general one (ingest.cpp lists them), the bodies ingest_parse_test covers, and
// 40,000 deterministic mutations of them (bytes flipped to JSON's structural and troublesome
// characters, inserted, deleted, segments doubled).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "ingest.h"

namespace evrouted {
namespace {

const std::string kFields[] = {"type", "source", "level"};

// Replaces the first occurrence of `id` in `payload` (a generated id sits right after {"id":").
std::string without_id(std::string payload, std::string_view id) {
  if (auto at = payload.find(id); at != std::string::npos) payload.replace(at, id.size(), "<id>");
  return payload;
}

::testing::AssertionResult agree(std::string_view body, BodyFormat format) {
  const IngestResult fast = parse_events(body, format, kFields);
  const IngestResult general = parse_events_general(body, format, kFields);
  auto fail = [&]() {
    return ::testing::AssertionFailure()
           << "body: " << ::testing::PrintToString(std::string(body)) << "\n";
  };
  if (fast.error != general.error) {
    return fail() << "errors differ: fast \"" << fast.error << "\", general \"" << general.error
                  << "\"";
  }
  if (fast.events.size() != general.events.size()) {
    return fail() << fast.events.size() << " vs " << general.events.size() << " events";
  }
  for (std::size_t i = 0; i < fast.events.size(); ++i) {
    const evroute::Event& a = fast.events[i];
    const evroute::Event& b = general.events[i];
    const bool generated = a.id() != b.id();
    const std::string pa =
        generated ? without_id(std::string(a.payload()), a.id()) : std::string(a.payload());
    const std::string pb =
        generated ? without_id(std::string(b.payload()), b.id()) : std::string(b.payload());
    if (pa != pb) return fail() << "event " << i << " payloads differ:\n" << pa << "\n" << pb;
    if (a.attribute_count() != b.attribute_count()) {
      return fail() << "event " << i << ": " << a.attribute_count() << " vs " << b.attribute_count()
                    << " attributes";
    }
    for (std::size_t k = 0; k < a.attribute_count(); ++k) {
      const evroute::Attribute x = a.attribute_at(k), y = b.attribute_at(k);
      if (x.key != y.key || x.value != y.value) {
        return fail() << "event " << i << " attribute " << k << ": " << x.key << "=" << x.value
                      << " vs " << y.key << "=" << y.value;
      }
    }
  }
  return ::testing::AssertionSuccess();
}

std::string nested(int levels) {
  std::string s = "{\"id\":\"deep\",\"x\":";
  for (int i = 1; i < levels; ++i) s += "[";
  s += "1";
  for (int i = 1; i < levels; ++i) s += "]";
  return s + "}";
}

std::vector<std::string> cases() {
  std::vector<std::string> c = {
      R"({"type":"order.created","source":"shop","amount":1999,"items":[{"sku":"A","qty":2}]})",
      R"({"id":"e-1","type":"a"})",
      R"({})",
      R"({"id":"x","id":"y"})",
      R"({"id":"x","type":"a","type":"b"})",
      R"({"type":1})",
      R"({"type":1.50,"level":-0})",
      R"({"type":true,"level":false,"source":null})",
      R"({"type":{"a":1},"source":["x"]})",
      R"({"type":123456789012345678901234567890})",
      R"({"x":1e99999})",
      R"({"x":-1e99999})",
      R"({"x":1.7976931348623157e308})",
      R"({"x":18446744073709551616})",
      R"({"x":-9223372036854775809})",
      R"({"id":5})",
      R"({"id":""})",
      R"({"id":null})",
      R"({"id":"a\tb"})",
      R"({"id":"a\u0000b"})",
      R"({"id":"\u00e9"})",
      R"({"x":"\ud800"})",
      R"({"x":"\udc00"})",
      R"({"x":"\ud83d\ude00"})",
      R"({"id":"quote\"and\\slash\/"})",
      R"({"type":"esc\b\f\n\r\t"})",
      "{\"id\":\"\xc2\x80\"}",
      "{\"id\":\"a\x7f\"}",
      "{\"x\":\"\xff\"}",
      "{\"x\":\"\xc0\xaf\"}",
      "{\"x\":\"\xed\xa0\x80\"}",
      "{\"x\xff\":1}",
      "{\"x\":\"a\x01\"}",
      "{\"x\":1}\x00",
      R"({"x":1} x)",
      R"({}{})",
      R"({"x":1,})",
      R"({"x":01})",
      R"({ "id" : "spaced" , "type" : "t" })",
      "\xEF\xBB\xBF{\"id\":\"bom\"}",
      "{\"id\":\"" + std::string(1024, 'a') + "\"}",
      "{\"id\":\"" + std::string(1025, 'a') + "\"}",
      "{\"type\":\"" + std::string(65535, 't') + "\"}",
      "{\"type\":\"" + std::string(65536, 't') + "\"}",
      "{\"pad\":\"" + std::string(70000, 'p') + "\"}",
      nested(62),
      nested(63),
      nested(64),
      nested(65),
      R"([{"id":"in-array"}])",
      // Arrays: each element on the fast path, or the whole body on the general one.
      R"([{"id":"a","type":"t"},{"type":"u","n":1},{}])",
      R"([ {"id": "spaced", "type": "t"} , {"x": [1, {"y": "]}"}]} ])",
      "[\n  {\"id\":\"pretty-1\"},\n  {\"id\":\"pretty-2\"}\n]",
      "[{\"id\":\"multi\",\n\"x\":1}]",
      R"([{"s":"\"}{]["},{"t":"\\"}])",
      R"([{"a":1,"a":2},{"id":"x","id":"y"}])",
      R"([{"type":"t","type":"u"}])",
      R"([{"id":1}])",
      R"([{"x":1},])",
      R"([,{"x":1}])",
      R"([{"x":1} {"y":2}])",
      R"([{"x":1}],)",
      R"([{"x":1}]])",
      R"([{"x":1},2])",
      R"([[{"x":1}]])",
      R"([{"x":{]}])",
      R"([{"x":"\u0041"}])",
      R"([{"amount":1999}])",
      R"([])",
      R"([ ])",
      "[" + nested(62) + "]",
      "[" + nested(63) + "]",
      "[" + nested(64) + "]",
      "{\"a\":1}\r",
      // What On-Demand checks only when it is read: every value is, filtered or not.
      R"({"x":[1 2]})",
      R"({"x":{"a" 1}})",
      R"({"x":{"a":1 "b":2}})",
      R"({"x":[1,]})",
      R"({"x":{"a":1,}})",
      R"({"x":[1]]})",
      R"({"x":1}})",
      R"({"x":[tru]})",
      R"({"x":[nul]})",
      R"({"x":[nulll]})",
      R"({"x":[-]})",
      R"({"x":[1.]})",
      R"({"x":[.5]})",
      R"({"x":[1e]})",
      R"({"x":"\x"})",
      R"({"x":"a\"})",
      R"({"x":"\\u0041"})",
      R"({"x\ty":"\\"})",
      R"({"x":\"a\"})",
      R"({"x":1.5e3,"y":-0.0,"z":[true,false,null,{"w":[[]]}]})",
      R"({"type":"\"quoted\"","level":true,"source":null})",
      R"({"type":"\n"})",
      R"({"ty\/pe":"escaped key"})",
      R"([{"x":[1 2]},{"y":1}])",
      R"([{"y":1},{"x":{"a" 1}}])",
      R"([{"y":1}, {"id":"b"} ] )",
      R"([{"y":1}] [{"y":2}])",
      // NDJSON's lines, read as one array on the fast path: each element must be one whole line.
      "{\"a\":[1\n2]}",
      "{\"a\":1\n\"b\":2}",
      "{\"a\":1},{\"b\":2}",
      "{\"a\":1}\n,{\"b\":2}",
      "{\"a\":1}\n\n  {\"b\":2}  \n\r\n",
      "\xEF\xBB\xBF {\"a\":1}\n{\"b\":2}",
      "\n\xEF\xBB\xBF{\"a\":1}",
  };
  return c;
}

TEST(IngestFastPath, AgreesWithTheGeneralPathOnTheCases) {
  for (const std::string& body : cases()) {
    EXPECT_TRUE(agree(body, BodyFormat::kJson));
    EXPECT_TRUE(agree(body, BodyFormat::kNdjson));
    EXPECT_TRUE(agree(body + "\n" + body + "\n\n" + body, BodyFormat::kNdjson));
    EXPECT_TRUE(agree("{\"ok\":1}\n" + body, BodyFormat::kNdjson));
  }
}

// Brackets that do not match make On-Demand read past the body's last token: what an earlier,
// longer body left in the parser's buffer there must not pass for more of this one (fuzz_ingest
// found a body whose walk then ended before it began).
TEST(IngestFastPath, AgreesOnUnbalancedBodiesWhateverCameBefore) {
  const std::string unbalanced[] = {
      R"([{"a":[0,{"b":[0]}])",
      R"([{"a":[0]])",
      R"([{"a":{"b":0]])",
      R"([{"a":1},{"b":[}])",
      R"({"a":[0,{"b":[0]}])",
      R"({"a":{"b":0]})",
      std::string("[{\"id\":\"1\",\"+jso:nule\":\"a\"},{\"tyed+jso:nule\":\"a01a23d61-517e-7004-") +
          "9d12-a24a46ea5cb1\"},{\"tyed\":{\"" + std::string(51, '@') + "x\":[0,{\"y\":{\"" +
          std::string(29, '@') + "x\":[0,{\"y\":null}]}}]",
  };
  for (const std::string filler : {"}", "]", "}]", "]}", ",", "\"", "0", "},{\"x\":1", "\"}]"}) {
    std::string before = "[{\"pad\":[";
    while (before.size() < 600) before += "\"" + filler + "\",";
    before += "0]}]";
    ASSERT_TRUE(agree(before, BodyFormat::kJson));
    std::string raw;  // the filler itself after the body's end: invalid, declined, but left behind
    while (raw.size() < 600) raw += filler;
    (void)parse_events("[" + raw, BodyFormat::kJson, kFields);
    for (const std::string& body : unbalanced) {
      (void)parse_events("[" + raw, BodyFormat::kJson, kFields);
      EXPECT_TRUE(agree(body, BodyFormat::kJson)) << "after " << filler;
      (void)parse_events("[" + raw, BodyFormat::kJson, kFields);
      EXPECT_TRUE(agree(body, BodyFormat::kNdjson)) << "after " << filler;
    }
  }
}

// A filtered field named "id" (or named twice) reads the one value of the object's id.
TEST(IngestFastPath, AgreesWhenAFilteredFieldIsTheId) {
  const std::string fields[] = {"id", "type", "id"};
  for (const std::string body : {R"({"id":"a","type":"t"})", R"([{"id":"a"},{"type":"t"}])",
                                 R"({"id":5})", R"({"type":"t","id":"a","id":"b"})"}) {
    for (const BodyFormat format : {BodyFormat::kJson, BodyFormat::kNdjson}) {
      const IngestResult fast = parse_events(body, format, fields);
      const IngestResult general = parse_events_general(body, format, fields);
      ASSERT_EQ(fast.error, general.error) << body;
      ASSERT_EQ(fast.events.size(), general.events.size()) << body;
      for (std::size_t i = 0; i < fast.events.size(); ++i) {
        ASSERT_EQ(fast.events[i].attribute_count(), general.events[i].attribute_count()) << body;
        for (std::size_t k = 0; k < fast.events[i].attribute_count(); ++k) {
          EXPECT_EQ(fast.events[i].attribute_at(k).value, general.events[i].attribute_at(k).value)
              << body;
        }
      }
    }
  }
}

// The fast path takes the bodies it is for (were it to decline them, every test above would still
// pass, only slower): objects, arrays and NDJSON lines of plain events.
TEST(IngestFastPath, TakesPlainEvents) {
  const std::string event =
      R"({"type":"order.created","source":"shop","level":"info","amount":19.99,"n":-3,)"
      R"("ok":true,"none":null,"tags":["a","b\n"],"at":{"lat":1e-3,"lon":[0]}})";
  EXPECT_TRUE(fast_path_takes(event, BodyFormat::kJson, kFields));
  EXPECT_TRUE(fast_path_takes("[" + event + "," + event + "]", BodyFormat::kJson, kFields));
  EXPECT_TRUE(
      fast_path_takes("[\n " + event + ",\n " + event + "\n]\n", BodyFormat::kJson, kFields));
  EXPECT_TRUE(fast_path_takes(event + "\n" + event + "\n", BodyFormat::kNdjson, kFields));
  EXPECT_TRUE(fast_path_takes(R"({"id":"quote\"and\\slash\/"})", BodyFormat::kJson, kFields));
  // ... and declines what it leaves to the general path.
  EXPECT_FALSE(fast_path_takes(R"({"x":"\u0041"})", BodyFormat::kJson, kFields));
  EXPECT_FALSE(fast_path_takes("{\"x\":\n1}", BodyFormat::kJson, kFields));
  EXPECT_FALSE(fast_path_takes(R"([{"type":1}])", BodyFormat::kJson, kFields));
  EXPECT_FALSE(fast_path_takes(R"([{"x":[1 2]}])", BodyFormat::kJson, kFields));
}

// Each element of an array is an event with its own text (spaces and all, as a single object
// keeps its own), on both paths; an element on several lines is re-serialized.
TEST(IngestFastPath, ArrayElementsKeepTheirOwnText) {
  const std::string body =
      "[ {\"id\": \"a\", \"type\": \"t\"} ,{\"type\":\"u\"},\n{\"id\":\"c\",\n\"n\": 1}]";
  for (const IngestResult& r : {parse_events(body, BodyFormat::kJson, kFields),
                                parse_events_general(body, BodyFormat::kJson, kFields)}) {
    ASSERT_EQ(r.error, "");
    ASSERT_EQ(r.events.size(), 3u);
    EXPECT_EQ(r.events[0].payload(), R"({"id": "a", "type": "t"})");
    EXPECT_EQ(r.events[1].payload(),
              R"({"id":")" + std::string(r.events[1].id()) + R"(","type":"u"})");
    EXPECT_EQ(r.events[2].payload(), R"({"id":"c","n":1})");
    EXPECT_EQ(r.events[0].type(), "t");
  }
}

TEST(IngestFastPath, AgreesWithTheGeneralPathOnMutations) {
  const std::vector<std::string> seeds = cases();
  const std::string interesting = std::string("\"\\{}[]:,0-e.u +tfn\n\r\t") + '\0' + "\x1f\x7f" +
                                  "\x80\xc2\xc3\xe2\xed\xf0\xff";
  std::mt19937 rng(12345);  // deterministic: a failure is reproducible
  int mutants = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string body = seeds[rng() % seeds.size()];
    if (body.size() > 4096) continue;  // the long ones are covered as they are
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !body.empty(); ++e) {
      const std::size_t at = rng() % body.size();
      const char c = interesting[rng() % interesting.size()];
      switch (rng() % 4) {
        case 0:
          body[at] = c;
          break;
        case 1:
          body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), c);
          break;
        case 2:
          body.erase(at, 1);
          break;
        default: {
          const std::size_t len = 1 + rng() % std::min<std::size_t>(8, body.size() - at);
          body.insert(at, body.substr(at, len));
        }
      }
    }
    ++mutants;
    ASSERT_TRUE(agree(body, BodyFormat::kJson));
    ASSERT_TRUE(agree(body, BodyFormat::kNdjson));
  }
  EXPECT_GT(mutants, 30000);
}

}  // namespace
}  // namespace evrouted
