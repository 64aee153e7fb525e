// SyncPolicy: when written data is forced to stable storage (fdatasync) — the one fsync policy of
// evroute, used by DiskLog (a disk queue's `queue.fsync`) and by the daemon's file sink (`fsync`).
//
//   * kNever:    written; the kernel syncs when it likes. A crash of the process loses nothing
//                written; a power loss may lose what the kernel had not synced yet.
//   * kInterval: written, and synced by a background thread every interval: a power loss may lose
//                the last interval.
//   * kAlways:   synced before the write is reported done.
//
// What each means for a given writer (group commit, batching) is described where it is used.
#pragma once

namespace evroute {

enum class SyncPolicy { kNever, kInterval, kAlways };

}  // namespace evroute
