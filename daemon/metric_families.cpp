#include "metric_families.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace evrouted {

prometheus::MetricFamily metric_family(std::string name, std::string help,
                                       prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_sample(prometheus::MetricFamily& family, double value, MetricLabels labels) {
  prometheus::ClientMetric& m = family.metric.emplace_back();
  m.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
}

void merge_families(std::vector<prometheus::MetricFamily>& into,
                    std::vector<prometheus::MetricFamily> from) {
  for (prometheus::MetricFamily& f : from) {
    auto same = std::find_if(into.begin(), into.end(),
                             [&](const prometheus::MetricFamily& g) { return g.name == f.name; });
    if (same == into.end()) {
      into.push_back(std::move(f));
    } else {
      same->metric.insert(same->metric.end(), std::make_move_iterator(f.metric.begin()),
                          std::make_move_iterator(f.metric.end()));
    }
  }
}

}  // namespace evrouted
