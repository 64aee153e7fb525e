// Building blocks for the prometheus::Collectable of each component that shows on /metrics
// (metrics.h): families and their samples, built at scrape time from the component's own counters
// (the hot path keeps its relaxed atomics; nothing of prometheus-cpp runs per event or request),
// and the merge of what several components collected into one list with one family per name.
//
// Thread-safety: plain functions on the caller's values.
#pragma once

#include <prometheus/metric_family.h>

#include <string>
#include <vector>

namespace evrouted {

using MetricLabels = std::vector<prometheus::ClientMetric::Label>;

prometheus::MetricFamily metric_family(std::string name, std::string help,
                                       prometheus::MetricType type);
// Adds a sample to a counter or gauge family; the labels are written in the order given.
void add_sample(prometheus::MetricFamily& family, double value, MetricLabels labels = {});

// Appends `from` to `into`: a family already in `into` (same name) gets `from`'s samples after
// its own, others are added at the end. So the families keep the order they were first collected
// in, and their samples the order of the components (e.g. the sinks in configuration order).
void merge_families(std::vector<prometheus::MetricFamily>& into,
                    std::vector<prometheus::MetricFamily> from);

}  // namespace evrouted
