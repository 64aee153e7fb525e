// ingest_bench: the cost of turning a POST /v1/events body into events (daemon/ingest.h), per
// event, on the load benchmark's own bodies (bench/post_batch.lua's event: ~190 bytes, 100 per
// request): a JSON array, NDJSON, one object; on the fast path (parse_events: simdjson On-Demand)
// and on the general one (parse_events_general: nlohmann's DOM). Reports; never fails CI.
//
//   build-release/bench/ingest_bench [--benchmark_filter=Array]
#include <benchmark/benchmark.h>

#include <string>

#include "ingest.h"

namespace {

using evrouted::BodyFormat;

const std::string kFields[] = {"type"};  // what ingest always reads

std::string event(int n) {
  return R"({"type":"order.created","source":"shop-eu-1","customer":"c-1234567","amount":1999,)"
         R"("currency":"EUR","items":[{"sku":"A-100","qty":2},{"sku":"B-200","qty":1}],"note":"x",)"
         R"("n":)" +
         std::to_string(n) + "}";
}

std::string body(BodyFormat format, int events) {
  std::string b = format == BodyFormat::kNdjson ? "" : events > 1 ? "[" : "";
  for (int i = 1; i <= events; ++i) {
    if (format == BodyFormat::kNdjson) {
      b += event(i) + "\n";
    } else {
      b += (i > 1 ? "," : "") + event(i);
    }
  }
  return format == BodyFormat::kNdjson || events == 1 ? b : b + "]";
}

template <bool kFast>
void BM_Ingest(benchmark::State& state) {
  const auto format = static_cast<BodyFormat>(state.range(0));
  const int events = static_cast<int>(state.range(1));
  const std::string text = body(format, events);
  for (auto _ : state) {
    evrouted::IngestResult r = kFast ? evrouted::parse_events(text, format, kFields)
                                     : evrouted::parse_events_general(text, format, kFields);
    if (r.events.size() != static_cast<std::size_t>(events)) state.SkipWithError("not parsed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * events);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}

void Shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"format", "events"});
  b->Args({static_cast<int>(BodyFormat::kJson), 100});
  b->Args({static_cast<int>(BodyFormat::kNdjson), 100});
  b->Args({static_cast<int>(BodyFormat::kJson), 1});
}

BENCHMARK_TEMPLATE(BM_Ingest, true)->Name("BM_IngestFast")->Apply(Shapes);
BENCHMARK_TEMPLATE(BM_Ingest, false)->Name("BM_IngestGeneral")->Apply(Shapes);

}  // namespace

BENCHMARK_MAIN();
