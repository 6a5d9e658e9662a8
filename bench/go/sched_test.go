// Go twins of bench/bench_sched.cpp (run side by side by
// ci/bench-compare.sh):
//
//	BenchmarkSpawnJoin: go one goroutine that calls Done, Wait for it.
//	BenchmarkGoschedPingPong: two goroutines each calling runtime.Gosched in
//	a loop; ns/op = one round (two Gosched calls). Run with -cpu 1.
package bench

import (
	"runtime"
	"sync"
	"testing"
)

func BenchmarkSpawnJoin(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
}

func BenchmarkGoschedPingPong(b *testing.B) {
	var wg sync.WaitGroup
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			for i := 0; i < b.N; i++ {
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
}
