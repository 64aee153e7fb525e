// evrouted's jemalloc settings (linked when EVROUTE_JEMALLOC is on: see CMakeLists.txt). jemalloc
// reads this string at its first allocation, then /etc/malloc.conf, then the MALLOC_CONF
// environment variable: later settings override earlier ones, so an operator can still tune it.
//
// - narenas:2: the loop threads and sink workers are few, and every arena keeps its own free
//   pages: two arenas (jemalloc's default is 4 per core) held 3-6 MiB less at the same speed.
// - dirty_decay_ms:1000, muzzy_decay_ms:0: freed pages go back to the kernel after a second, not
//   ten, so the peak RSS after a burst falls back soon (bench/load.sh, scenario 6).
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's (man 3 jemalloc, "TUNING").
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
