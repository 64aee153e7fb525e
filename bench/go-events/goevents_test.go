// Package gobench measures docker/go-events, as Debian packages it, in the shapes of
// bench/lib_bench.cpp (issue 15), so bench/compare.sh can print both sides and their ratios:
//
//	(a) BenchmarkBroadcast/sinks=N      Broadcaster -> N no-op sinks: ns per write (N = 1, 4, 16)
//	(b) BenchmarkQueueWriteThenDrain    Queue: write 100,000 events, Close (drains them) into a
//	                                    no-op sink: ns per event
//	(c) BenchmarkGoEventsChain          Broadcaster -> 4 x (Queue -> Filter -> Retrying(Breaker) ->
//	                                    no-op): write 100,000, Close: ns per event
//	(d) BenchmarkPendingMemory          resident memory with 1,000,000 pending 200-byte events in
//	                                    a Queue whose destination blocks (run it alone, in a fresh
//	                                    process, with -test.benchtime=1x)
//
// Each event is its own allocation, as in lib_bench: a 36-byte UUID-like id, a type
// ("order.created", what the Filter matches on) and a 200-byte JSON payload of its own.
//
// Builds offline against /usr/share/gocode (GO111MODULE=off; bench/compare.sh shows how).
// Run with GOMAXPROCS=2 on the 2-core benchmark machine.
package gobench

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	events "github.com/docker/go-events"
)

type event struct {
	id      string
	typ     string
	payload []byte
}

// The same 200-byte payload as lib_bench's payload_200().
func payload200() []byte {
	p := `{"type":"order.created","customer":"c-123456","amount":1999,"pad":"`
	p += strings.Repeat("x", 200-len(p)-2)
	p += `"}`
	return []byte(p)
}

func makeEvent(i int, typ string, payload []byte) *event {
	own := make([]byte, len(payload))
	copy(own, payload)
	return &event{id: fmt.Sprintf("018f3a2b-0000-7000-8000-%012x", i), typ: typ, payload: own}
}

var pool []events.Event

// n distinct events, built once (like lib_bench's events()).
func eventPool(n int) []events.Event {
	if len(pool) < n {
		payload := payload200()
		for i := len(pool); i < n; i++ {
			pool = append(pool, makeEvent(i, "order.created", payload))
		}
	}
	return pool[:n]
}

type noopSink struct{}

func (noopSink) Write(events.Event) error { return nil }
func (noopSink) Close() error             { return nil }

// blockedSink blocks every write: a dead destination.
type blockedSink struct{ never chan struct{} }

func (s blockedSink) Write(events.Event) error { <-s.never; return events.ErrSinkClosed }
func (s blockedSink) Close() error             { return nil }

func nsPerEvent(b *testing.B, start time.Time, eventsPerOp int) {
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*eventsPerOp), "ns/event")
}

// (a) Write blocks until the broadcaster's goroutine takes the event, then that goroutine writes
// it to every sink in turn. Close (which waits for the last fan-out) is inside the timing.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("sinks=%d", n), func(b *testing.B) {
			sinks := make([]events.Sink, n)
			for i := range sinks {
				sinks[i] = noopSink{}
			}
			evs := eventPool(1024)
			bc := events.NewBroadcaster(sinks...)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if err := bc.Write(evs[i&1023]); err != nil {
					b.Fatal(err)
				}
			}
			bc.Close()
			nsPerEvent(b, start, 1)
		})
	}
}

const batch = 100000

// (b) A new Queue per op, as lib_bench's BM_QueueWriteThenDrain: write 100,000, Close (which
// waits until the queue's goroutine has written all of them to the no-op sink).
func BenchmarkQueueWriteThenDrain(b *testing.B) {
	evs := eventPool(batch)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		q := events.NewQueue(noopSink{})
		for _, e := range evs {
			if err := q.Write(e); err != nil {
				b.Fatal(err)
			}
		}
		q.Close()
	}
	nsPerEvent(b, start, batch)
}

// (c) go-events' own composition (the registry's per-endpoint chain, with a Filter): a new
// Broadcaster -> 4 x (Queue -> Filter -> RetryingSink(Breaker) -> no-op) per op; write 100,000,
// Close (closes each Queue, which drains it, then closes the Filter and the RetryingSink).
func BenchmarkGoEventsChain(b *testing.B) {
	evs := eventPool(batch)
	match := events.MatcherFunc(func(e events.Event) bool {
		return strings.HasPrefix(e.(*event).typ, "order.")
	})
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		bc := events.NewBroadcaster()
		for k := 0; k < 4; k++ {
			retrying := events.NewRetryingSink(noopSink{}, events.NewBreaker(10, time.Second))
			if err := bc.Add(events.NewQueue(events.NewFilter(retrying, match))); err != nil {
				b.Fatal(err)
			}
		}
		for _, e := range evs {
			if err := bc.Write(e); err != nil {
				b.Fatal(err)
			}
		}
		bc.Close()
	}
	nsPerEvent(b, start, batch)
}

func rssBytes() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		return 0
	}
	defer f.Close()
	var size, resident int64
	fmt.Fscan(bufio.NewReader(f), &size, &resident)
	return resident * int64(os.Getpagesize())
}

// (d) 1,000,000 events, each built here (as lib_bench's BM_PendingMemory does), written to a
// Queue whose destination blocks: the queue's goroutine holds the first, the rest pend in its
// list. Resident memory after the last write, and its growth over the process before.
func BenchmarkPendingMemory(b *testing.B) {
	const pending = 1000000
	payload := payload200()
	for i := 0; i < 1; i++ { // once, whatever b.N: a second queue would count twice
		before := rssBytes()
		q := events.NewQueue(blockedSink{never: make(chan struct{})})
		for j := 0; j < pending; j++ {
			if err := q.Write(makeEvent(j, "", payload)); err != nil {
				b.Fatal(err)
			}
		}
		after := rssBytes()
		b.ReportMetric(float64(after)/1e6, "rss_MB")
		b.ReportMetric(float64(after-before)/1e6, "growth_MB")
		b.ReportMetric(float64(after-before)/pending-float64(len(payload)), "overhead_B/event")
		// The queue is left blocked: its destination never returns (as in lib_bench, the
		// process ends right after).
	}
}
