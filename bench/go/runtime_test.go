// Go twins of the runtime rows of ci/bench-compare.sh (docs/PERFORMANCE.md):
//
//	BenchmarkWakeLatencyCrossP: twin of keel's BM_wake_latency_cross_p (run
//	with -cpu 2): a goroutine parked on a WaitGroup, its P idle for 200 us;
//	main stamps t0 and calls Done without ever parking, the woken goroutine
//	stamps t1 when it runs on the other P. Reports p50-ns and p90-ns.
//	BenchmarkParked1M: twin of keel's BM_parked_1m: 10^6 goroutines parked
//	on one WaitGroup at once; reports rss-B/goroutine (resident growth over
//	the goroutine count). Measured once per process: Go calls a benchmark
//	more than once, and a second run would reuse the first one's stacks.
//	BenchmarkTimeToPreempt: run with -cpu 1: main starts a goroutine running
//	a call-free loop and yields to it; ns/op is how long until main runs
//	again (sysmon's asynchronous preemption). keel has no preemption yet.
package bench

import (
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func spinFor(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
	}
}

func BenchmarkWakeLatencyCrossP(b *testing.B) {
	samples := make([]int64, 0, b.N)
	base := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		wg.Add(1)
		var waiting int32
		var t1 int64
		done := make(chan struct{})
		go func() {
			atomic.StoreInt32(&waiting, 1)
			wg.Wait()
			atomic.StoreInt64(&t1, int64(time.Since(base)))
			close(done)
		}()
		for atomic.LoadInt32(&waiting) == 0 {
		}
		spinFor(200 * time.Microsecond)
		t0 := int64(time.Since(base))
		wg.Done()
		var back int64
		for back = atomic.LoadInt64(&t1); back == 0; back = atomic.LoadInt64(&t1) {
		}
		samples = append(samples, back-t0)
		<-done
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	b.ReportMetric(float64(samples[len(samples)/2]), "p50-ns")
	b.ReportMetric(float64(samples[len(samples)*9/10]), "p90-ns")
}

// Resident set of this process in bytes (Linux /proc/self/statm).
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return -1
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

var parked1M struct {
	once sync.Once
	per  float64
}

func BenchmarkParked1M(b *testing.B) {
	const n = 1000000
	parked1M.once.Do(func() {
		var parked, gate, ended sync.WaitGroup
		parked.Add(n)
		gate.Add(1)
		ended.Add(n)
		r0 := residentBytes()
		for i := 0; i < n; i++ {
			go func() {
				parked.Done()
				gate.Wait()
				ended.Done()
			}()
		}
		parked.Wait()
		runtime.Gosched()
		r1 := residentBytes()
		parked1M.per = float64(r1-r0) / n
		gate.Done()
		ended.Wait()
	})
	b.ReportMetric(parked1M.per, "rss-B/goroutine")
}

func BenchmarkTimeToPreempt(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var stop int32
		started := make(chan struct{})
		go func() {
			close(started)
			x := 0
			for atomic.LoadInt32(&stop) == 0 { // call-free: only async preemption stops it
				x++
			}
			_ = x
		}()
		<-started // the spinner is running on the only P (or about to)
		// Yield to it: with one P, main runs again only once the spinner has
		// been preempted.
		runtime.Gosched()
		atomic.StoreInt32(&stop, 1)
	}
}
