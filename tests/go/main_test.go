// Package clients runs franz-go (kgo, kadm) and the current Sarama against the reference
// Apache Kafka and against Strom in one `go test` run: each scenario is a test whose
// subtests "kafka" and "strom" make the same assertions, Kafka first, so every
// expectation is shown to be Kafka's before Strom is held to it. The brokers are started
// once, by TestMain (package harness). Clients run at their own defaults; where a test
// changes one, the comment says why.
package clients

import (
	"context"
	"testing"
	"time"

	"strom.local/tests/go/harness"
)

// timeout bounds one scenario against one broker.
const timeout = 60 * time.Second

func TestMain(m *testing.M) { harness.Main(m) }

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// eventually retries check until it returns nil or the deadline passes, for what a
// broker may show a moment after it acknowledged it (metadata after a topic change).
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sent is one record as a test produced it, to compare with what comes back.
type sent struct {
	Key, Value string
	Partition  int32
	Offset     int64
}

// assertDense checks that each partition's offsets are 0, 1, 2, ... in order.
func assertDense(t *testing.T, offsets map[int32][]int64) {
	t.Helper()
	for p, os := range offsets {
		for i, o := range os {
			if o != int64(i) {
				t.Fatalf("partition %d: offsets %v are not 0..%d", p, os, len(os)-1)
			}
		}
	}
}
