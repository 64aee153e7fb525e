#include "disk_log_record.h"

#if EVROUTE_HAVE_ISAL
#include <isa-l/crc.h>
#if defined(__x86_64__)
// ISA-L's CRC-32 on 128-bit PCLMULQDQ folding, which its x86-64 builds export (crc.h does not
// declare it): see checksum().
extern "C" std::uint32_t crc32_gzip_refl_by8(std::uint32_t init, const unsigned char* buf,
                                             std::uint64_t len);
#endif
#else
#include <zlib.h>
#endif

#include <chrono>
#include <cstdio>
#include <cstring>
#include <vector>

namespace evroute::internal {
namespace {

constexpr std::uint8_t kVersion = 1;

// Little-endian integers and byte strings written at `p`, which moves past them.
void store(char*& p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) *p++ = static_cast<char>((v >> (8 * i)) & 0xff);
}
void store(char*& p, std::string_view s) {
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p += s.size();
}
void set_u32(char* at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t load_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// Reads little-endian integers and byte strings from a body; any overrun makes is_ok() false.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  std::uint64_t uint(int bytes) {
    if (!take(static_cast<std::size_t>(bytes))) return 0;
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) {
      v = (v << 8) |
          static_cast<unsigned char>(
              data_[pos_ - static_cast<std::size_t>(bytes) + static_cast<std::size_t>(i)]);
    }
    return v;
  }
  std::string_view bytes(std::size_t n) {
    if (!take(n)) return {};
    return data_.substr(pos_ - n, n);
  }
  bool is_ok() const { return ok_; }
  bool at_end() const { return pos_ == data_.size(); }

 private:
  bool take(std::size_t n) {
    if (!ok_ || data_.size() - pos_ < n) return ok_ = false;
    pos_ += n;
    return true;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// CRC-32 (ISO-HDLC, zlib's and gzip's): ISA-L's folding implementation when the library was
// built with it, zlib's otherwise; the same value either way (the on-disk format;
// DiskLogTest.RecordChecksumsAreTheStandardCrc32OfTheBody checks it). On x86-64 the 128-bit
// variant, not the one crc32_gzip_refl picks: on a CPU with AVX-512 that is the 512-bit one, as
// fast in a loop (9 ns for 290 bytes) but not between the rest of the daemon's work, one record of
// a few hundred bytes at a time (likely the wide units powering up again): a disk-queued sink took
// 11% more events/s with the narrow one (bench/README.md, issue 15, seventh step). It needs
// PCLMULQDQ and SSE4.1; without them crc32_gzip_refl picks.
std::uint32_t checksum(std::string_view body) {
#if EVROUTE_HAVE_ISAL
  const auto* bytes = reinterpret_cast<const unsigned char*>(body.data());
#if defined(__x86_64__)
  static const bool narrow = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  if (narrow) return crc32_gzip_refl_by8(0, bytes, body.size());
#endif
  return crc32_gzip_refl(0, bytes, body.size());
#else
  return static_cast<std::uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
#endif
}

// Writes the body of the record (the layout in disk_log_record.h) at `p`: exactly
// framed_record_size() - kRecordHeaderBytes bytes.
void write_body(const Event& e, std::string_view meta, char* p) {
  store(p, kVersion, 1);
  store(p,
        static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(e.received().time_since_epoch())
                .count()),
        8);
  store(p, e.id().size(), 2);
  store(p, e.id());
  store(p, e.attribute_count(), 1);
  for (std::size_t i = 0; i < e.attribute_count(); ++i) {
    const Attribute a = e.attribute_at(i);
    store(p, a.key.size(), 2);
    store(p, a.key);
    store(p, a.value.size(), 2);
    store(p, a.value);
  }
  store(p, meta.size(), 4);
  store(p, meta);
  store(p, e.payload().size(), 4);
  store(p, e.payload());
}

// Decodes a record body; false if it is malformed.
bool decode_body(std::string_view body, Event* event, std::string* meta) {
  Reader r(body);
  if (r.uint(1) != kVersion) return false;
  const auto received_ns = static_cast<std::int64_t>(r.uint(8));
  const std::string_view id = r.bytes(r.uint(2));
  const std::size_t count = r.uint(1);
  std::vector<Attribute> attributes;
  attributes.reserve(count);
  for (std::size_t i = 0; i < count && r.is_ok(); ++i) {
    const std::string_view key = r.bytes(r.uint(2));
    const std::string_view value = r.bytes(r.uint(2));
    attributes.push_back({key, value});
  }
  const std::string_view meta_bytes = r.bytes(r.uint(4));
  const std::string_view payload = r.bytes(r.uint(4));
  if (!r.is_ok() || !r.at_end() || id.empty()) return false;
  *event = Event::make(id, payload, attributes,
                       Event::TimePoint(std::chrono::duration_cast<Event::TimePoint::duration>(
                           std::chrono::nanoseconds(received_ns))));
  meta->assign(meta_bytes);
  return true;
}

}  // namespace

std::uint64_t framed_record_size(const Event& e, std::string_view meta) {
  std::uint64_t body = 1 + 8 + 2 + e.id().size() + 1 + 4 + meta.size() + 4 + e.payload().size();
  for (std::size_t i = 0; i < e.attribute_count(); ++i) {
    body += 4 + e.attribute_at(i).key.size() + e.attribute_at(i).value.size();
  }
  return kRecordHeaderBytes + body;
}

Status append_record(const Event& event, std::string_view meta, std::string* out) {
  if (!event) return Status::invalid_argument("empty event");
  const std::uint64_t framed = framed_record_size(event, meta);
  if (framed - kRecordHeaderBytes > kMaxRecordBodyBytes) {
    return Status::invalid_argument("record of event " + std::string(event.id()) +
                                    " is larger than 256 MiB");
  }
  // Sized once and written in place (appending byte by byte was most of append's own time).
  const std::size_t start = out->size();
  out->resize(start + static_cast<std::size_t>(framed));
  char* const record = out->data() + start;
  write_body(event, meta, record + kRecordHeaderBytes);
  const std::string_view body(record + kRecordHeaderBytes,
                              static_cast<std::size_t>(framed - kRecordHeaderBytes));
  set_u32(record, static_cast<std::uint32_t>(body.size()));
  set_u32(record + 4, checksum(body));
  return Status::ok();
}

std::uint32_t record_body_length(const char* header) { return load_u32(header); }

RecordCheck decode_record(std::string_view bytes, Event* event, std::string* meta) {
  RecordCheck check;
  if (bytes.size() < kRecordHeaderBytes) {
    check.problem = RecordProblem::kTornHeader;
    return check;
  }
  check.length = load_u32(bytes.data());
  check.available = bytes.size() - kRecordHeaderBytes;
  if (check.length == 0 || check.length > kMaxRecordBodyBytes) {
    check.problem = RecordProblem::kImpossibleLength;
  } else if (check.available < check.length) {
    check.problem = RecordProblem::kTornBody;
  } else {
    const std::string_view body = bytes.substr(kRecordHeaderBytes, check.length);
    if (checksum(body) != load_u32(bytes.data() + 4)) {
      check.problem = RecordProblem::kChecksumMismatch;
    } else if (!decode_body(body, event, meta)) {
      check.problem = RecordProblem::kMalformed;
    }
  }
  return check;
}

RecordCheck scan_records(std::string_view data, std::uint64_t* offset, std::uint64_t* records,
                         const std::function<void(std::uint64_t, const Event&)>& each) {
  RecordCheck check;
  while (*offset < data.size()) {
    Event event;
    std::string meta;
    check = decode_record(data.substr(*offset), &event, &meta);
    if (!check.is_ok()) break;
    if (each) each(*offset, event);
    ++*records;
    *offset += check.extent();
  }
  return check;
}

std::string segment_file_name(std::uint64_t number) {
  char name[32];
  std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(number));
  return name;
}

bool parse_segment_file_name(const std::string& name, std::uint64_t* number) {
  if (name.size() != 24 || name.compare(20, 4, ".seg") != 0) return false;
  if (name.find_first_not_of("0123456789") != 20) return false;
  *number = std::stoull(name.substr(0, 20));
  return *number > 0;
}

std::string RecordCheck::describe() const {
  switch (problem) {
    case RecordProblem::kNone:
      return "";
    case RecordProblem::kTornHeader:
      return "torn record header";
    case RecordProblem::kImpossibleLength:
      return "impossible record length " + std::to_string(length);
    case RecordProblem::kTornBody:
      return "torn record (" + std::to_string(available) + " of " + std::to_string(length) +
             " bytes)";
    case RecordProblem::kChecksumMismatch:
      return "checksum mismatch";
    case RecordProblem::kMalformed:
      return "malformed record";
  }
  return "";
}

}  // namespace evroute::internal
