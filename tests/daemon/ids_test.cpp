// Generated ids are UUIDv7: well-formed, unique and increasing, also across threads, also in
// batches (EventIdBatch).
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <span>
#include <thread>

#include "ids.h"

namespace evrouted {
namespace {

TEST(Ids, CanonicalUuidV7) {
  static const std::regex uuid7(
      "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(std::regex_match(new_event_id(), uuid7));
}

TEST(Ids, WrittenIntoABufferLikeTheString) {
  static const std::regex uuid7(
      "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  char buffer[kEventIdBytes + 1];
  buffer[kEventIdBytes] = '!';  // past the id: left alone
  const std::string before = new_event_id();
  new_event_id(std::span<char, kEventIdBytes>(buffer, kEventIdBytes));
  const std::string written(buffer, kEventIdBytes);
  EXPECT_TRUE(std::regex_match(written, uuid7)) << written;
  EXPECT_EQ(buffer[kEventIdBytes], '!');
  EXPECT_LT(before, written);  // one sequence with the string form
  EXPECT_LT(written, new_event_id());
}

TEST(Ids, StrictlyIncreasingInOneThread) {
  std::string prev = new_event_id();
  for (int i = 0; i < 100000; ++i) {
    std::string next = new_event_id();
    ASSERT_LT(prev, next);
    prev = std::move(next);
  }
}

// A batch's ids are new_event_id()'s sequence: increasing with it in one thread, runs and all.
TEST(Ids, ABatchKeepsTheSequenceOfItsThread) {
  std::string prev = new_event_id();
  for (int request = 0; request < 200; ++request) {
    EventIdBatch batch;
    for (int i = 0; i < request % 150; ++i) {
      std::string next(kEventIdBytes, '\0');
      batch.next(std::span<char, kEventIdBytes>(next.data(), kEventIdBytes));
      ASSERT_LT(prev, next);
      ASSERT_EQ(next[14], '7');  // still a UUIDv7
      prev = std::move(next);
    }
    std::string single = new_event_id();
    ASSERT_LT(prev, single);
    prev = std::move(single);
  }
}

// Runs `make` (which appends kEach ids to its vector) on 4 threads at once: each thread's ids
// increase, and no id is made twice.
template <class Make>
void expect_unique_and_increasing_per_thread(Make make) {
  constexpr int kThreads = 4;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back([&, t] { make(ids[t]); });
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  std::size_t made = 0;
  for (auto& v : ids) {
    EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
    all.insert(v.begin(), v.end());
    made += v.size();
  }
  EXPECT_EQ(made, static_cast<std::size_t>(kThreads) * 20000);
  EXPECT_EQ(all.size(), made);
}

TEST(Ids, BatchesAreUniqueAcrossThreads) {
  expect_unique_and_increasing_per_thread([](std::vector<std::string>& out) {
    constexpr int kEach = 20000;
    for (int i = 0; i < kEach;) {
      EventIdBatch batch;  // requests of 1 to 100 events, interleaved with single ids
      for (int n = 1 + i % 100; n > 0 && i < kEach; --n, ++i) {
        std::string id(kEventIdBytes, '\0');
        batch.next(std::span<char, kEventIdBytes>(id.data(), kEventIdBytes));
        out.push_back(std::move(id));
      }
      if (i < kEach) out.push_back(new_event_id()), ++i;
    }
  });
}

TEST(Ids, UniqueAcrossThreads) {
  expect_unique_and_increasing_per_thread([](std::vector<std::string>& out) {
    for (int i = 0; i < 20000; ++i) out.push_back(new_event_id());
  });
}

}  // namespace
}  // namespace evrouted
