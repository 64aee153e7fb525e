// The bounded JSON parse path, UTF-8 checks and URL redaction.
#include "json_parse.h"

#include <gtest/gtest.h>

#include "redact.h"

namespace evrouted {
namespace {

using Json = nlohmann::ordered_json;

TEST(ParseJson, DepthIsBoundedWhateverTheInputSize) {
  Json out;
  EXPECT_EQ(parse_json(std::string(64, '[') + std::string(64, ']'), &out), "");
  bool too_deep = false;
  const std::string err =
      parse_json(std::string(1000000, '[') + std::string(1000000, ']'), &out, {}, &too_deep);
  EXPECT_EQ(err, "JSON nested deeper than 64 levels");
  EXPECT_TRUE(too_deep);
  EXPECT_EQ(parse_json(std::string(10, '['), &out, {5}, &too_deep),
            "JSON nested deeper than 5 levels");
  EXPECT_EQ(parse_json("[1,", &out, {}, &too_deep).rfind("malformed JSON: ", 0), 0u);
  EXPECT_FALSE(too_deep);
}

TEST(ParseJson, DuplicateIdOnlyAtTheEventDepth) {
  Json out;
  EXPECT_EQ(parse_json(R"({"id":1,"id":2})", &out, {64, 1}), "duplicate field \"id\"");
  EXPECT_EQ(parse_json(R"({"id":1,"id":2})", &out), "");  // not asked for
  EXPECT_EQ(parse_json(R"({"a":{"id":1,"id":2}})", &out, {64, 1}), "");
  EXPECT_EQ(parse_json(R"([{"id":1},{"id":1,"\u0069d":2}])", &out, {65, 2}),
            "duplicate field \"id\"");
}

TEST(ParseJson, ErrorsAreUtf8) {
  Json out;
  const std::string err = parse_json("{\"a\":\"\xff\"}", &out);
  EXPECT_TRUE(valid_utf8(err)) << err;
  EXPECT_NO_THROW((void)Json(err).dump());
}

TEST(Utf8, ValidationAndReplacement) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xe2\x9c"));          // truncated
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_EQ(to_valid_utf8("a\xff"
                          "b\xe2\x9c"),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(has_control_character("a\tb"));
  EXPECT_TRUE(has_control_character("a\x7f"));
  EXPECT_TRUE(has_control_character("a\xc2\x85"));              // NEL, U+0085
  EXPECT_FALSE(has_control_character("caf\xc3\xa9 \xc2\xa0"));  // é, no-break space
}

TEST(RedactUrls, KeepsSchemeHostAndPortOnly) {
  EXPECT_EQ(redact_urls("http POST https://hooks.slack.com/services/T0/B0/XYZ"),
            "http POST https://hooks.slack.com/\u2026");
  EXPECT_EQ(redact_urls("POST http://user:pw@10.0.0.1:8080/a?token=x: HTTP 503"),
            "POST http://10.0.0.1:8080/\u2026: HTTP 503");
  EXPECT_EQ(redact_urls("POST https://[::1]:9/x, then http://h?q=1"),
            "POST https://[::1]:9/\u2026, then http://h/\u2026");
  EXPECT_EQ(redact_urls("http POST http://example.com"), "http POST http://example.com");
  EXPECT_EQ(redact_urls("no url here"), "no url here");
}

}  // namespace
}  // namespace evrouted
