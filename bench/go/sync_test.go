// Go twins of bench/bench_sync.cpp: the same shapes and batch sizes, so keel
// and Go can be measured side by side on one machine:
//
//	go test -bench . -benchtime 2s ./bench/go    (from the repository root: cd bench/go first)
//
// BenchmarkMutexContended reports ns per batch of 10,000 lock/++/unlock split
// over 1, 4 or 16 goroutines, plus ns/lock; BenchmarkWaitGroupFanout ns per
// fan-out of N goroutines, plus ns/goroutine.
package bench

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

const batch = 10000

func BenchmarkMutexContended(b *testing.B) {
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var mu sync.Mutex
			var counter uint64
			per := batch / n
			start := time.Now()
			for it := 0; it < b.N; it++ {
				var wg sync.WaitGroup
				wg.Add(n)
				for g := 0; g < n; g++ {
					go func() {
						for i := 0; i < per; i++ {
							mu.Lock()
							counter++
							mu.Unlock()
						}
						wg.Done()
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*per*n), "ns/lock")
			_ = counter
		})
	}
}

func BenchmarkWaitGroupFanout(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			start := time.Now()
			for it := 0; it < b.N; it++ {
				var wg sync.WaitGroup
				wg.Add(n)
				for g := 0; g < n; g++ {
					go func() { wg.Done() }()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N*n), "ns/goroutine")
		})
	}
}

func BenchmarkMutexUncontended(b *testing.B) {
	var mu sync.Mutex
	for i := 0; i < b.N; i++ {
		mu.Lock()
		mu.Unlock()
	}
}
