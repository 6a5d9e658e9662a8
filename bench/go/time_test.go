// Go twin of bench/bench_time.cpp: the timer storm of Go #41699. 50,000
// goroutines, each doing ten rounds of Reset(10s), Reset(10s), Sleep(20ms)
// on its own timer. The figure is process CPU time (user + system) per
// storm, reported as the "cpu-ns/op" metric; ns/op is wall time.
package bench

import (
	"sync"
	"syscall"
	"testing"
	"time"
)

func cpuNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkTimerStorm(b *testing.B) {
	const goroutines, rounds = 50000, 10
	c0 := cpuNs()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		wg.Add(goroutines)
		for g := 0; g < goroutines; g++ {
			go func() {
				t := time.NewTimer(10 * time.Second)
				for r := 0; r < rounds; r++ {
					t.Reset(10 * time.Second)
					t.Reset(10 * time.Second)
					time.Sleep(20 * time.Millisecond)
				}
				t.Stop()
				wg.Done()
			}()
		}
		wg.Wait()
	}
	b.ReportMetric(float64(cpuNs()-c0)/float64(b.N), "cpu-ns/op")
}
