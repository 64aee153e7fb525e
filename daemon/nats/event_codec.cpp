#include "nats/event_codec.h"

#include <chrono>
#include <cstdint>
#include <vector>

namespace evrouted::nats {
namespace {

constexpr std::string_view kMagic = "EVR1";

void put(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool get(std::string_view& in, int bytes, std::uint64_t* v) {
  if (in.size() < static_cast<std::size_t>(bytes)) return false;
  *v = 0;
  for (int i = 0; i < bytes; ++i) {
    *v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  }
  in.remove_prefix(bytes);
  return true;
}

bool get_text(std::string_view& in, std::string_view* text) {
  std::uint64_t n = 0;
  if (!get(in, 2, &n) || in.size() < n) return false;
  *text = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

}  // namespace

std::string encode_event(const evroute::Event& event) {
  std::string out;
  out.reserve(kMagic.size() + 11 + event.footprint());
  out += kMagic;
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(event.received().time_since_epoch());
  put(out, static_cast<std::uint64_t>(ns.count()), 8);
  put(out, event.id().size(), 2);
  out += event.id();
  put(out, event.attribute_count(), 1);
  for (std::size_t i = 0; i < event.attribute_count(); ++i) {
    const evroute::Attribute a = event.attribute_at(i);
    put(out, a.key.size(), 2);
    out += a.key;
    put(out, a.value.size(), 2);
    out += a.value;
  }
  out += event.payload();
  return out;
}

std::optional<evroute::Event> decode_event(std::string_view in) {
  if (!in.starts_with(kMagic)) return std::nullopt;
  in.remove_prefix(kMagic.size());
  std::uint64_t ns = 0, count = 0;
  std::string_view id;
  if (!get(in, 8, &ns) || !get_text(in, &id) || id.empty() || !get(in, 1, &count)) {
    return std::nullopt;
  }
  std::vector<evroute::Attribute> attributes;
  attributes.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string_view key, value;
    if (!get_text(in, &key) || !get_text(in, &value)) return std::nullopt;
    attributes.push_back({key, value});
  }
  const evroute::Event::TimePoint received(
      std::chrono::duration_cast<evroute::Event::TimePoint::duration>(
          std::chrono::nanoseconds(static_cast<std::int64_t>(ns))));
  try {
    return evroute::Event::make(id, in, attributes, received);
  } catch (const std::length_error&) {
    return std::nullopt;
  }
}

}  // namespace evrouted::nats
