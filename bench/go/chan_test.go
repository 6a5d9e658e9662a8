// Go twins of bench/bench_chan.cpp: the same shapes, so keel and Go can be
// measured side by side on one machine:
//
//	go test -bench 'Chan|Select4|Skynet' -benchtime 2s ./bench/go    (cd bench/go first)
//
// BenchmarkChanPingPongSameP / CrossP set GOMAXPROCS to 1 / 2 themselves
// (keel's twins need KEEL_MAXPROCS=1 / 2). BenchmarkSkynet1M reports the
// process's peak RSS (MiB) as a metric.
package bench

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
)

func chanPingPong(b *testing.B, procs int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	ping, pong := make(chan int64), make(chan int64)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ping <- int64(i)
		<-pong
	}
	b.StopTimer()
	close(ping)
}

func BenchmarkChanPingPongSameP(b *testing.B)  { chanPingPong(b, 1) }
func BenchmarkChanPingPongCrossP(b *testing.B) { chanPingPong(b, 2) }

func BenchmarkChanProdCons(b *testing.B) {
	for _, c := range []int{0, 10, 100} {
		b.Run(fmt.Sprintf("cap=%d", c), func(b *testing.B) {
			ch := make(chan int64, c)
			n := b.N
			go func() {
				for i := 0; i < n; i++ {
					ch <- int64(i)
				}
			}()
			var sum int64
			for i := 0; i < n; i++ {
				sum += <-ch
			}
			_ = sum
		})
	}
}

func BenchmarkSelect4OneReady(b *testing.B) {
	var c [4]chan int64
	for i := range c {
		c[i] = make(chan int64, 1)
	}
	var sum int64
	for i := 0; i < b.N; i++ {
		c[i&3] <- int64(i)
		select {
		case v := <-c[0]:
			sum += v
		case v := <-c[1]:
			sum += v
		case v := <-c[2]:
			sum += v
		case v := <-c[3]:
			sum += v
		}
	}
	_ = sum
}

func skynet(out chan<- int64, num, size, div int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64)
	for i := int64(0); i < div; i++ {
		sub := num + i*(size/div)
		go skynet(rc, sub, size/div, div)
	}
	var sum int64
	for i := int64(0); i < div; i++ {
		sum += <-rc
	}
	out <- sum
}

func BenchmarkSkynet1M(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c := make(chan int64)
		go skynet(c, 0, 1000000, 10)
		if r := <-c; r != 499999500000 {
			b.Fatalf("skynet: got %d", r)
		}
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-rss-MiB")
}
