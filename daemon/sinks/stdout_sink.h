#pragma once
#include "sinks/registry.h"
namespace evrouted { std::unique_ptr<SinkSpec> parse_stdout_sink(ConfigReader& reader); }
