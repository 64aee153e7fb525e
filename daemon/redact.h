// Redaction of URLs in texts shown to readers who are not authenticated as admins.
//
// A webhook URL's userinfo, path and query can be secrets themselves (Slack-style URLs are), so
// wherever a text may name one — a sink's description, a disabled sink's reason, an error — it is
// shown to such readers as scheme://host[:port]/… instead.
//
// Thread-safety: a pure function.
#pragma once

#include <string>
#include <string_view>

namespace evrouted {

// Every http:// and https:// URL in `text` (up to the next white space, a trailing ':' or ','
// excluded) as scheme://host[:port], with "/…" where anything followed the authority; userinfo
// ("user:password@") is dropped.
std::string redact_urls(std::string_view text);

}  // namespace evrouted
