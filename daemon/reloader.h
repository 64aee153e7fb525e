// Reloader: SIGHUP (systemctl reload), the whole of it. reload() re-reads the configuration file
// and applies it to the running daemon while requests keep being served, then reopens file sinks
// and re-enables the sinks their destination disabled:
//  * An invalid file is rejected with every problem logged (as --check prints them) and changes
//    nothing.
//  * server.tls's certificate, key and CA files are loaded again (a bad one keeps the previous);
//    server.auth.tokens are replaced.
//  * Sinks: unchanged ones (same fingerprint, config_diff.h) keep their pipeline — queue,
//    connections, counters. Added ones are built before anything changes (a sink that cannot start
//    fails the reload, which then changes nothing). Changed ones are rebuilt without losing what
//    was queued for them: the new pipeline's queue takes over from the old one
//    (QueueKind::take_over: a memory queue's backlog is handed over ahead of any newer event; a
//    disk queue is reopened on the same directory and resumes at its cursor). Its dead-letter log
//    stays the same; its counters start again from zero. Removed ones stop receiving at once and
//    drain in the background for up to shutdown_timeout (Router::retire): what a memory queue still
//    holds then is counted and logged as undelivered; a disk queue keeps it (delivered if the sink
//    is configured again).
//  * Settings a running daemon cannot take (the rest of server.*, limits.memory, data_dir, and a
//    sink's queue kind: queue_change_needs_restart) are logged as needing a restart and keep their
//    running values; `running` always describes what runs.
//
// Thread-safety: one thread (evrouted's main thread, on SIGHUP).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "config_diff.h"
#include "router.h"

namespace evrouted {

class Server;

class Reloader {
 public:
  // `running` is what runs now, and is kept up to date; all three outlive the Reloader.
  Reloader(std::string config_path, Config& running, Router& router, Server& server)
      : path_(std::move(config_path)), running_(running), router_(router), server_(server) {}

  void reload();

  struct SinkChanges {
    std::vector<std::string> added, removed, changed;  // applied
    std::vector<std::string> not_applied;  // changed sinks kept on their running settings
    std::string error;                     // non-empty: nothing was applied
  };
  // The sinks part: applies `next`'s sinks to the router (`diff` = diff_configs(running, next)).
  SinkChanges apply_sinks(const Config& next, const ConfigDiff& diff);

 private:
  void reload_tls(const Config& next);
  void apply_tokens(const Config& next);
  // `running` takes next's sinks, except those whose change was not applied.
  void update_running(const Config& next, const SinkChanges& changes);

  const std::string path_;
  Config& running_;
  Router& router_;
  Server& server_;
};

}  // namespace evrouted
