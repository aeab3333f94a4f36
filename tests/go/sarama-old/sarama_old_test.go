// Package saramaold runs Sarama 1.38.1 (github.com/Shopify/sarama, before the move to
// IBM/sarama and before 1.40) at its default config.Version, V1_0_0_0, against the
// reference Kafka and Strom. It is a module of its own so that the old Sarama keeps the
// dependency versions it was released with.
//
// That default makes Sarama send request versions Kafka 4.0 removed (KIP-896; for
// example DescribeConfigs v0 and OffsetCommit v2), so on Kafka these scenarios are
// expected to fail, and the tests assert how: a named Kafka 4 difference. Strom keeps
// those versions so that such clients still work: on Strom the same scenarios must
// succeed. STROM_OLD_VERSIONS=0 skips the Strom side (for a Strom without them).
package saramaold

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Shopify/sarama"

	"strom.local/tests/go/harness"
)

const timeout = 30 * time.Second

func TestMain(m *testing.M) { harness.Main(m) }

// kafka4Refuses says whether err is how old Sarama sees Kafka 4's refusal of a request
// version KIP-896 removed: Kafka logs UnsupportedVersionException ("Received request for
// api with key 32 (DescribeConfigs) and unsupported version 0") and closes the
// connection, so the client reads EOF (or a reset, a broken pipe) where the answer
// should be.
func kafka4Refuses(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// needOldVersions skips a Strom subtest that needs the pre-KIP-896 request versions
// when STROM_OLD_VERSIONS=0 (a Strom built before it served them).
func needOldVersions(t *testing.T, b harness.Broker) {
	if b.Name == harness.Strom && os.Getenv("STROM_OLD_VERSIONS") == "0" {
		t.Skip("STROM_OLD_VERSIONS=0: this Strom is not expected to serve the pre-KIP-896 request versions")
	}
}

// refusedOnKafka checks a call that sends a request version Kafka 4 removed: on Kafka
// it must fail with the refusal (the named Kafka 4 difference), on Strom it must
// succeed. It returns whether the scenario goes on (only on Strom).
func refusedOnKafka(t *testing.T, b harness.Broker, what string, err error) bool {
	t.Helper()
	if b.Name == harness.Kafka {
		if err == nil {
			t.Fatalf("%s: Kafka 4 answered old Sarama's request version, which KIP-896 removed", what)
		}
		if !kafka4Refuses(err) {
			t.Fatalf("%s: Kafka 4 refused otherwise than by closing the connection: %v", what, err)
		}
		t.Logf("%s: refused by Kafka 4 (KIP-896), as expected: %v", what, err)
		return false
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return true
}

func config() *sarama.Config {
	c := sarama.NewConfig()
	// A SyncProducer needs it; everything else, config.Version included, is the default.
	c.Producer.Return.Successes = true
	return c
}

// produce sends n keyed messages with a SyncProducer and returns their positions
// ("partition@offset=value") and each partition's end offset.
func produce(b harness.Broker, topic string, n int) ([]*sarama.ProducerMessage, error) {
	p, err := sarama.NewSyncProducer([]string{b.Bootstrap}, config())
	if err != nil {
		return nil, fmt.Errorf("NewSyncProducer: %w", err)
	}
	defer p.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(fmt.Sprintf("key-%d", i%7)), Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i))}
	}
	if err := p.SendMessages(msgs); err != nil {
		var pe sarama.ProducerErrors
		if errors.As(err, &pe) && len(pe) > 0 {
			return nil, fmt.Errorf("SendMessages: %d failed, first: %w", len(pe), pe[0].Err)
		}
		return nil, fmt.Errorf("SendMessages: %w", err)
	}
	return msgs, nil
}

// Produce v3 and Metadata v5, what V1_0_0_0 sends, are still served by Kafka 4: this
// one works on both brokers.
func TestOldSaramaProduces(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		msgs, err := produce(b, harness.Unique("old-sarama-produce"), 30)
		if err != nil {
			t.Fatal(err)
		}
		offsets := map[int32][]int64{}
		for _, m := range msgs {
			offsets[m.Partition] = append(offsets[m.Partition], m.Offset)
		}
		if len(offsets) == 0 || len(offsets) > 4 {
			t.Fatalf("produced to %d partitions", len(offsets))
		}
		for p, os := range offsets {
			sort.Slice(os, func(i, j int) bool { return os[i] < os[j] })
			for i, o := range os {
				if o != int64(i) {
					t.Fatalf("partition %d: offsets %v are not dense from 0", p, os)
				}
			}
		}
	})
}

type handler struct {
	want int
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, fmt.Sprintf("%d@%d=%s", m.Partition, m.Offset, m.Value))
		if len(h.got) == h.want {
			close(h.done)
		}
		h.mu.Unlock()
		s.MarkMessage(m, "")
	}
	return nil
}

// groupRead runs a consumer group member until it read want messages, commits them
// (session.Commit) and closes it.
func groupRead(b harness.Broker, group, topic string, want int) ([]string, error) {
	cfg := config()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest // the messages are already there
	g, err := sarama.NewConsumerGroup([]string{b.Bootstrap}, group, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewConsumerGroup: %w", err)
	}
	h := &handler{want: want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{topic}, h); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	var failed error
	select {
	case <-h.done:
	case err := <-consumed:
		failed = fmt.Errorf("Consume: %w", err)
	case err := <-g.Errors():
		failed = fmt.Errorf("group: %w", err)
	case <-time.After(timeout):
		failed = fmt.Errorf("read %d of %d messages", len(h.got), want)
	}
	if failed != nil {
		g.Close()
		return nil, failed
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-consumed; err != nil {
		return nil, fmt.Errorf("Consume: %w", err)
	}
	// Close commits what was marked.
	if err := g.Close(); err != nil {
		return nil, fmt.Errorf("Close: %w", err)
	}
	select {
	case err := <-g.Errors():
		if err != nil {
			return nil, fmt.Errorf("group: %w", err)
		}
	default:
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	sort.Strings(h.got)
	return h.got, nil
}

// The group reads on both brokers (JoinGroup, SyncGroup, Fetch v6 are still served), but
// its commits are OffsetCommit v1 (Sarama sends v1 while Consumer.Offsets.Retention is
// 0, the default), which Kafka 4 refuses: nothing is committed there, and Sarama, whose
// Consumer.Return.Errors is off by default, does not say so. On Strom the commits land.
func TestOldSaramaConsumerGroupCommits(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		needOldVersions(t, b)
		topic, group := harness.Unique("old-sarama-group"), harness.Unique("old-sarama-g")
		msgs, err := produce(b, topic, 20)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		ends := map[int32]int64{}
		for _, m := range msgs {
			want = append(want, fmt.Sprintf("%d@%d=%s", m.Partition, m.Offset, m.Value.(sarama.StringEncoder)))
			ends[m.Partition] = max(ends[m.Partition], m.Offset+1)
		}
		sort.Strings(want)
		got, err := groupRead(b, group, topic, len(want))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("the group read %v, want %v", got, want)
		}
		admin, err := sarama.NewClusterAdmin([]string{b.Bootstrap}, config())
		if err != nil {
			t.Fatalf("NewClusterAdmin: %v", err)
		}
		defer admin.Close()
		// OffsetFetch v1, still served by Kafka 4.
		committed, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2, 3}})
		if err != nil {
			t.Fatalf("ListConsumerGroupOffsets: %v", err)
		}
		for p, end := range ends {
			if b.Name == harness.Kafka {
				// The named Kafka 4 difference: the refused OffsetCommit v1 left nothing.
				end = -1
			}
			block := committed.GetBlock(topic, p)
			if block == nil || block.Err != sarama.ErrNoError || block.Offset != end {
				t.Fatalf("committed %s[%d] = %+v, want %d", topic, p, block, end)
			}
		}
		if b.Name == harness.Kafka {
			t.Log("Kafka 4 refused OffsetCommit v1 (KIP-896): nothing committed, as expected")
		}
	})
}

// ListTopics and DescribeConfig send DescribeConfigs v0 (v1 needs V1_1_0_0), which
// Kafka 4 refuses.
func TestOldSaramaClusterAdmin(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		needOldVersions(t, b)
		topic := harness.Unique("old-sarama-admin")
		if _, err := produce(b, topic, 1); err != nil {
			t.Fatal(err)
		}
		admin, err := sarama.NewClusterAdmin([]string{b.Bootstrap}, config())
		if err != nil {
			t.Fatalf("NewClusterAdmin: %v", err)
		}
		defer admin.Close()
		topics, err := admin.ListTopics()
		if refusedOnKafka(t, b, "ListTopics", err) {
			if d, ok := topics[topic]; !ok || d.NumPartitions != 4 {
				t.Fatalf("ListTopics: %s listed %v with %+v", topic, ok, d)
			}
		}
		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		if !refusedOnKafka(t, b, "DescribeConfig", err) {
			return
		}
		for _, e := range entries {
			if e.Name == "cleanup.policy" {
				if e.Value != "delete" || !e.Default {
					t.Fatalf("cleanup.policy described as %+v", e)
				}
				return
			}
		}
		t.Fatalf("DescribeConfig of %s: no cleanup.policy among %d entries", topic, len(entries))
	})
}
