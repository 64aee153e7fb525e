// Running a command line of the tests (node with an npm client, openssl, curl...) and reading what
// it prints.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace evtest {

struct CommandResult {
  int exit_code = -1;  // -1: it could not start, or died of a signal
  std::string out;     // its standard output (add 2>&1 to the command for stderr too)
};

// Runs `command` with /bin/sh and waits for it.
inline CommandResult run_command(const std::string& command) {
  CommandResult r;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) r.out.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// `s` as one word of a /bin/sh command line.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace evtest
