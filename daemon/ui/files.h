// The console's files (daemon/ui/), built into evrouted by daemon/ui/embed_files.cmake.
#pragma once

#include <string_view>
#include <vector>

namespace evrouted::ui {

struct File {
  std::string_view name;   // "index.html", "console.js"...
  std::string_view bytes;  // the file as it is in daemon/ui/
};

const std::vector<File>& files();

}  // namespace evrouted::ui
