// Internal to the library: the one record format of DiskLog's segment files, shared by the writer
// (append), the reader (read) and recovery (open), so that a record is framed and checked in
// exactly one way.
//
// A record is a header and a body, little-endian:
//   header  u32 body length (1 .. kMaxBodyBytes), u32 CRC-32 of the body
//   body    u8  version (1)
//           u64 received time, nanoseconds since the epoch
//           u16 id length, id bytes (not empty)
//           u8  attribute count, then per attribute: u16 key length, key, u16 value length, value
//           u32 meta length, meta bytes
//           u32 payload length, payload bytes
// and nothing after the payload. A segment file is a sequence of whole records, named by its
// number (from 1) in 20 digits: 00000000000000000001.seg.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "evroute/event.h"
#include "evroute/status.h"

namespace evroute::internal {

inline constexpr std::uint32_t kRecordHeaderBytes = 8;  // u32 body length + u32 CRC-32
inline constexpr std::uint32_t kMaxRecordBodyBytes = 256u << 20;

// The size of the record of `event` and `meta` once framed (header included).
std::uint64_t framed_record_size(const Event& event, std::string_view meta);

// Appends the framed record of `event` and `meta` to *out. kInvalidArgument, with nothing
// appended, for an empty event or a body over kMaxRecordBodyBytes.
Status append_record(const Event& event, std::string_view meta, std::string* out);

// The body length field of the header at `header` (kRecordHeaderBytes readable there).
std::uint32_t record_body_length(const char* header);

// What decode_record() found at the start of some bytes, in the order it checks.
enum class RecordProblem {
  kNone,              // a whole, well-formed record
  kTornHeader,        // fewer than kRecordHeaderBytes bytes
  kImpossibleLength,  // a body length of 0 or over kMaxRecordBodyBytes
  kTornBody,          // fewer body bytes than the length says
  kChecksumMismatch,  // the body's CRC-32 is not the header's
  kMalformed,         // the body does not decode (see the layout above)
};

struct RecordCheck {
  RecordProblem problem = RecordProblem::kNone;
  std::uint32_t length = 0;     // the body length field, once the header is whole
  std::uint64_t available = 0;  // the body bytes present after the header
  bool is_ok() const { return problem == RecordProblem::kNone; }
  // The bytes the record takes (header and body), once is_ok().
  std::uint64_t extent() const { return kRecordHeaderBytes + length; }
  // What is wrong, as recovery reports it ("checksum mismatch", "torn record (3 of 40 bytes)").
  std::string describe() const;
};

// Checks the record at the start of `bytes` (more may follow it) and, when it is whole and well
// formed, decodes it into *event and *meta.
RecordCheck decode_record(std::string_view bytes, Event* event, std::string* meta);

// Decodes the records of a segment file's contents from *offset on, calling `each` (optional) with
// the offset and event of every good one, and stops at the first that does not check: returns its
// check (ok() when `data` ends on a whole record), with *offset where it starts (the end of the
// good records). Counts the good records in *records. Recovery cuts a segment there; inspection
// (disk_log_inspection.h) reports it.
RecordCheck scan_records(std::string_view data, std::uint64_t* offset, std::uint64_t* records,
                         const std::function<void(std::uint64_t offset, const Event&)>& each = {});

// A segment file's name, and its number from a name (false for a file that is not a segment).
std::string segment_file_name(std::uint64_t number);
bool parse_segment_file_name(const std::string& name, std::uint64_t* number);

}  // namespace evroute::internal
