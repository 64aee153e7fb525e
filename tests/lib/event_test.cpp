#include "evroute/event.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "evroute/status.h"

namespace evroute {
namespace {

TEST(EventTest, MakeStoresIdPayloadTimeAndAttributes) {
  const Event::TimePoint t = Event::TimePoint(std::chrono::seconds(1700000000));
  Event e = Event::make("id-1", R"({"a":1})", {{"type", "push"}, {"repo", "x/y"}}, t);
  ASSERT_TRUE(e);
  EXPECT_EQ(e.id(), "id-1");
  EXPECT_EQ(e.payload(), R"({"a":1})");
  EXPECT_EQ(e.received(), t);
  ASSERT_EQ(e.attribute_count(), 2u);
  EXPECT_EQ(e.attribute_at(1).key, "repo");
  EXPECT_EQ(e.attribute_at(1).value, "x/y");
  EXPECT_EQ(e.attribute("repo"), "x/y");
  EXPECT_EQ(e.attribute("type"), "push");
  EXPECT_EQ(e.type(), "push");
  EXPECT_EQ(e.attribute("missing"), std::nullopt);
  EXPECT_EQ(e.attribute("rep"), std::nullopt);  // a prefix of a key is not that key
}

TEST(EventTest, MakeJoinedConcatenatesThePayloadParts) {
  const Event::TimePoint at{std::chrono::milliseconds(1234)};
  const std::string_view parts[] = {"{\"id\":\"", "e-1", "\"", "", ",\"n\":1}"};
  const Attribute attributes[] = {{"type", "t"}};
  Event joined = Event::make_joined("e-1", parts, attributes, at);
  Event whole = Event::make("e-1", "{\"id\":\"e-1\",\"n\":1}", attributes, at);
  EXPECT_EQ(joined.payload(), whole.payload());
  EXPECT_EQ(joined.id(), "e-1");
  EXPECT_EQ(joined.type(), "t");
  EXPECT_EQ(joined.received(), at);
  EXPECT_EQ(joined.footprint(), whole.footprint());
  Event none = Event::make_joined("e-2", {}, {}, at);
  EXPECT_EQ(none.payload(), "");
  EXPECT_EQ(none.id(), "e-2");
}

TEST(EventTest, EmptyAttributeValueIsPresentAndTypeDefaultsToEmpty) {
  Event e = Event::make("id", "p", {{"flag", ""}});
  EXPECT_EQ(e.attribute("flag"), std::optional<std::string_view>(""));
  EXPECT_EQ(e.type(), "");
}

TEST(EventTest, ReceivedDefaultsToNow) {
  const auto before = std::chrono::system_clock::now();
  Event e = Event::make("id", "p");
  EXPECT_GE(e.received(), before);
  EXPECT_LE(e.received(), std::chrono::system_clock::now());
}

TEST(EventTest, EmptyEventHasEmptyValues) {
  Event e;
  EXPECT_FALSE(e);
  EXPECT_EQ(e.id(), "");
  EXPECT_EQ(e.payload(), "");
  EXPECT_EQ(e.received(), Event::TimePoint());
  EXPECT_EQ(e.attribute_count(), 0u);
  EXPECT_EQ(e.attribute("type"), std::nullopt);
  EXPECT_EQ(e.footprint(), 0u);
  EXPECT_EQ(e.use_count(), 0u);
  EXPECT_TRUE(e.same_as(Event()));
}

TEST(EventTest, CopiesSharePayloadNotBytes) {
  Event a = Event::make("id", std::string(1000, 'x'));
  const char* bytes = a.payload().data();
  Event b = a;
  Event c;
  c = b;
  EXPECT_TRUE(b.same_as(a));
  EXPECT_TRUE(c.same_as(a));
  EXPECT_EQ(a.use_count(), 3u);
  EXPECT_EQ(c.payload().data(), bytes);  // the same bytes, not a copy of them
  {
    std::vector<Event> fan(16, a);
    EXPECT_EQ(a.use_count(), 19u);
  }
  EXPECT_EQ(a.use_count(), 3u);
  c = Event();
  EXPECT_EQ(a.use_count(), 2u);
  Event& b_alias = b;
  b = b_alias;  // self-assignment keeps the event alive
  EXPECT_EQ(a.use_count(), 2u);
  EXPECT_EQ(b.payload(), std::string(1000, 'x'));
}

TEST(EventTest, MoveTransfersTheHandle) {
  Event a = Event::make("id", "payload");
  Event keep = a;
  Event b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is documented empty
  EXPECT_TRUE(b.same_as(keep));
  EXPECT_EQ(keep.use_count(), 2u);

  Event c = Event::make("other", "x");
  c = std::move(b);  // releases "other", takes b's handle
  EXPECT_FALSE(b);   // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(c.same_as(keep));
  EXPECT_EQ(keep.use_count(), 2u);
  Event& c_alias = c;
  c = std::move(c_alias);  // self-move keeps the event
  EXPECT_EQ(c.payload(), "payload");
}

TEST(EventTest, FootprintGrowsWithContent) {
  Event small = Event::make("id", "p");
  Event big = Event::make("id", std::string(1001, 'p'));
  EXPECT_GE(small.footprint(), std::string_view("idp").size());
  EXPECT_EQ(big.footprint() - small.footprint(), 1000u);
  Event attributed = Event::make("id", "p", {{"type", "push"}});
  EXPECT_GE(attributed.footprint() - small.footprint(), std::string_view("typepush").size());
}

TEST(EventTest, LimitsThrowLengthError) {
  EXPECT_THROW(Event::make(std::string(Event::kMaxIdBytes + 1, 'i'), "p"), std::length_error);
  std::string long_value(Event::kMaxAttributeBytes + 1, 'v');
  EXPECT_THROW(Event::make("id", "p", {{"k", long_value}}), std::length_error);
  std::vector<Attribute> many(Event::kMaxAttributes + 1, Attribute{"k", "v"});
  EXPECT_THROW(Event::make("id", "p", many), std::length_error);
  EXPECT_NO_THROW(Event::make("id", "p", std::span<const Attribute>(many).first(255)));
}

TEST(StatusTest, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_TRUE(static_cast<bool>(s));
  EXPECT_EQ(s.code(), Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.to_string(), "ok");
  EXPECT_EQ(s.retry_after(), std::chrono::milliseconds(0));
}

TEST(StatusTest, CodesAndRetryability) {
  EXPECT_TRUE(Status::closed().is_closed());
  EXPECT_EQ(Status::closed().message(), "sink is closed");
  EXPECT_TRUE(Status::unavailable("x").is_retryable());
  EXPECT_TRUE(Status::timeout("x").is_retryable());
  EXPECT_TRUE(Status::full("x").is_retryable());
  EXPECT_FALSE(Status::rejected("x").is_retryable());
  EXPECT_FALSE(Status::invalid_argument("x").is_retryable());
  EXPECT_FALSE(Status::closed().is_retryable());
  EXPECT_FALSE(Status::dropped("x").is_retryable());
  EXPECT_FALSE(Status::ok().is_retryable());
  EXPECT_FALSE(Status::rejected("x"));
  EXPECT_EQ(Status::invalid_argument("x").code(), Code::kInvalidArgument);
}

TEST(StatusTest, ToStringAndStream) {
  Status s = Status::unavailable("HTTP 503");
  EXPECT_EQ(s.to_string(), "unavailable: HTTP 503");
  EXPECT_EQ(Status(Code::kRejected, "").to_string(), "rejected");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "unavailable: HTTP 503");
  EXPECT_EQ(code_name(Code::kInvalidArgument), "invalid argument");
  EXPECT_EQ(code_name(Code::kDropped), "dropped");
}

TEST(StatusTest, AnOkCodeIsOkAndCarriesNothing) {
  Status s(Code::kOk, "ignored");
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.message(), "");
  s.with_retry_after(std::chrono::seconds(1));  // an OK status takes no hint
  EXPECT_EQ(s.retry_after(), std::chrono::milliseconds(0));
}

TEST(StatusTest, CopiesAndMovesKeepCodeMessageAndHint) {
  const Status original = Status::unavailable("503").with_retry_after(std::chrono::seconds(2));
  Status copy = original;  // a copy owns its details: changing it leaves the original alone
  copy.with_retry_after(std::chrono::seconds(7));
  EXPECT_EQ(original.retry_after(), std::chrono::milliseconds(2000));
  EXPECT_EQ(copy.code(), Code::kUnavailable);
  EXPECT_EQ(copy.message(), "503");
  Status moved = std::move(copy);
  EXPECT_EQ(moved.to_string(), "unavailable: 503");
  EXPECT_EQ(moved.retry_after(), std::chrono::milliseconds(7000));
  Status assigned;
  assigned = original;
  EXPECT_EQ(assigned.to_string(), original.to_string());
  assigned = Status::ok();
  EXPECT_TRUE(assigned.is_ok());
  Status& self = assigned;
  assigned = self;  // self-assignment keeps it
  EXPECT_TRUE(assigned.is_ok());
  Status error = Status::closed();
  Status& error_self = error;
  error = std::move(error_self);
  EXPECT_TRUE(error.is_closed());
}

TEST(StatusTest, RetryAfterHint) {
  Status s = Status::unavailable("429").with_retry_after(std::chrono::seconds(3));
  EXPECT_EQ(s.retry_after(), std::chrono::milliseconds(3000));
  Status t = Status::unavailable("503");
  t.with_retry_after(std::chrono::milliseconds(5));
  EXPECT_EQ(t.retry_after(), std::chrono::milliseconds(5));
  Status copy = t;
  EXPECT_EQ(copy.retry_after(), std::chrono::milliseconds(5));
  EXPECT_EQ(copy.message(), "503");
}

}  // namespace
}  // namespace evroute
