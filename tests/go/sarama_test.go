// The current Sarama (github.com/IBM/sarama) at its default config.Version: the sync and
// async producers, a classic consumer group's commits surviving a new member, and the
// ClusterAdmin basics.
package clients

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"strom.local/tests/go/harness"
)

// saramaConfig is Sarama's default configuration; Return.Successes is on because a
// SyncProducer needs it and the async test counts the successes.
func saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.Producer.Return.Successes = true
	return c
}

func saramaMessages(topic string, n int) []*sarama.ProducerMessage {
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(fmt.Sprintf("key-%d", i%7)),
			Value: sarama.StringEncoder(fmt.Sprintf("value-%d", i)),
		}
	}
	return msgs
}

// assertSaramaPlaced checks that a key kept its partition and that each partition's
// offsets are dense from 0, and returns the values by partition in offset order.
func assertSaramaPlaced(t *testing.T, msgs []*sarama.ProducerMessage) map[int32][]string {
	t.Helper()
	sort.SliceStable(msgs, func(i, j int) bool {
		if msgs[i].Partition != msgs[j].Partition {
			return msgs[i].Partition < msgs[j].Partition
		}
		return msgs[i].Offset < msgs[j].Offset
	})
	keyPartition := map[sarama.Encoder]int32{}
	offsets := map[int32][]int64{}
	values := map[int32][]string{}
	for _, m := range msgs {
		if p, ok := keyPartition[m.Key]; ok && p != m.Partition {
			t.Fatalf("key %v went to partitions %d and %d", m.Key, p, m.Partition)
		}
		keyPartition[m.Key] = m.Partition
		offsets[m.Partition] = append(offsets[m.Partition], m.Offset)
		values[m.Partition] = append(values[m.Partition], string(m.Value.(sarama.StringEncoder)))
	}
	assertDense(t, offsets)
	return values
}

// saramaReadBack reads each partition from the oldest offset until it has as many
// messages as want holds for it, and compares the values.
func saramaReadBack(t *testing.T, b harness.Broker, topic string, want map[int32][]string) {
	t.Helper()
	consumer, err := sarama.NewConsumer([]string{b.Bootstrap}, sarama.NewConfig())
	noErr(t, "NewConsumer", err)
	defer consumer.Close()
	partitions, err := consumer.Partitions(topic)
	noErr(t, "Partitions", err)
	if len(partitions) != 4 {
		t.Fatalf("%s auto-created with %d partitions, want 4", topic, len(partitions))
	}
	for p, values := range want {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		noErr(t, "ConsumePartition", err)
		var got []string
		for len(got) < len(values) {
			select {
			case m := <-pc.Messages():
				if m.Offset != int64(len(got)) {
					t.Fatalf("partition %d: offset %d after %d messages", p, m.Offset, len(got))
				}
				got = append(got, string(m.Value))
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-time.After(timeout):
				t.Fatalf("partition %d: read %d of %d", p, len(got), len(values))
			}
		}
		pc.Close()
		if !reflect.DeepEqual(got, values) {
			t.Fatalf("partition %d: read %v, sent %v", p, got, values)
		}
	}
}

func TestSaramaSyncProducer(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		topic := harness.Unique("sarama-sync")
		p, err := sarama.NewSyncProducer([]string{b.Bootstrap}, saramaConfig())
		noErr(t, "NewSyncProducer", err)
		defer p.Close()
		msgs := saramaMessages(topic, 40)
		noErr(t, "SendMessages", p.SendMessages(msgs))
		one := &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("key-0"), Value: sarama.StringEncoder("value-40")}
		part, off, err := p.SendMessage(one)
		noErr(t, "SendMessage", err)
		if part != one.Partition || off != one.Offset {
			t.Fatalf("SendMessage answered partition %d offset %d, the message says %d, %d", part, off, one.Partition, one.Offset)
		}
		saramaReadBack(t, b, topic, assertSaramaPlaced(t, append(msgs, one)))
	})
}

func TestSaramaAsyncProducer(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		topic := harness.Unique("sarama-async")
		p, err := sarama.NewAsyncProducer([]string{b.Bootstrap}, saramaConfig())
		noErr(t, "NewAsyncProducer", err)
		defer p.Close()
		msgs := saramaMessages(topic, 40)
		for _, m := range msgs {
			p.Input() <- m
		}
		var acked []*sarama.ProducerMessage
		for len(acked) < len(msgs) {
			select {
			case m := <-p.Successes():
				acked = append(acked, m)
			case err := <-p.Errors():
				t.Fatalf("produce: %v", err)
			case <-time.After(timeout):
				t.Fatalf("%d of %d messages acknowledged", len(acked), len(msgs))
			}
		}
		saramaReadBack(t, b, topic, assertSaramaPlaced(t, acked))
	})
}

// groupHandler records what a consumer group member read and marks (to commit) the
// messages at offsets below markBelow; done is closed once want messages came.
type groupHandler struct {
	markBelow int64
	want      int
	mu        sync.Mutex
	got       []string
	done      chan struct{}
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for m := range c.Messages() {
		h.mu.Lock()
		h.got = append(h.got, fmt.Sprintf("%d@%d=%s", m.Partition, m.Offset, m.Value))
		if len(h.got) == h.want {
			close(h.done)
		}
		h.mu.Unlock()
		if m.Offset < h.markBelow {
			s.MarkMessage(m, "")
		}
	}
	return nil
}

// saramaGroupRead runs one member of group until it read want messages, then waits a
// moment for extra ones, and closes it (which commits what it marked).
func saramaGroupRead(t *testing.T, b harness.Broker, group, topic string, want int, markBelow int64) []string {
	t.Helper()
	cfg := saramaConfig()
	// Sarama starts a new group at the newest offset by default; the messages are
	// already there.
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	g, err := sarama.NewConsumerGroup([]string{b.Bootstrap}, group, cfg)
	noErr(t, "NewConsumerGroup", err)
	h := &groupHandler{markBelow: markBelow, want: want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
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
	select {
	case <-h.done:
	case err := <-consumed:
		cancel()
		t.Fatalf("group %s: %v", group, err)
	case err := <-g.Errors():
		cancel()
		t.Fatalf("group %s: %v", group, err)
	case <-time.After(timeout):
		cancel()
		t.Fatalf("group %s read %d of %d", group, len(h.got), want)
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	noErr(t, "Consume", <-consumed)
	noErr(t, "Close", g.Close())
	h.mu.Lock()
	defer h.mu.Unlock()
	sort.Strings(h.got)
	return h.got
}

func TestSaramaConsumerGroupCommitsAndResumes(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		topic, group := harness.Unique("sarama-group"), harness.Unique("sarama-g")
		p, err := sarama.NewSyncProducer([]string{b.Bootstrap}, saramaConfig())
		noErr(t, "NewSyncProducer", err)
		msgs := saramaMessages(topic, 40)
		noErr(t, "SendMessages", p.SendMessages(msgs))
		p.Close()
		var all, rest []string
		ends := map[int32]int64{}
		for _, m := range msgs {
			pos := fmt.Sprintf("%d@%d=%s", m.Partition, m.Offset, m.Value.(sarama.StringEncoder))
			all = append(all, pos)
			if m.Offset >= 3 {
				rest = append(rest, pos)
			}
			ends[m.Partition] = max(ends[m.Partition], m.Offset+1)
		}
		sort.Strings(all)
		sort.Strings(rest)

		if got := saramaGroupRead(t, b, group, topic, len(all), 3); !reflect.DeepEqual(got, all) {
			t.Fatalf("first member read %v, want %v", got, all)
		}
		if got := saramaGroupRead(t, b, group, topic, len(rest), 1<<62); !reflect.DeepEqual(got, rest) {
			t.Fatalf("second member read %v, want %v", got, rest)
		}

		admin, err := sarama.NewClusterAdmin([]string{b.Bootstrap}, saramaConfig())
		noErr(t, "NewClusterAdmin", err)
		defer admin.Close()
		committed, err := admin.ListConsumerGroupOffsets(group, nil)
		noErr(t, "ListConsumerGroupOffsets", err)
		for part, end := range ends {
			block := committed.GetBlock(topic, part)
			if block == nil || !errors.Is(block.Err, sarama.ErrNoError) || block.Offset != end {
				t.Fatalf("committed %s[%d] = %+v, want %d", topic, part, block, end)
			}
		}
	})
}

func TestSaramaClusterAdmin(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		admin, err := sarama.NewClusterAdmin([]string{b.Bootstrap}, saramaConfig())
		noErr(t, "NewClusterAdmin", err)
		defer admin.Close()
		topic := harness.Unique("sarama-admin")
		hour := "3600000"
		detail := &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &hour}}
		noErr(t, "CreateTopic", admin.CreateTopic(topic, detail, false))
		wantErr(t, "CreateTopic of an existing topic", admin.CreateTopic(topic, detail, false), sarama.ErrTopicAlreadyExists)

		brokers, controller, err := admin.DescribeCluster()
		noErr(t, "DescribeCluster", err)
		if len(brokers) != 1 || brokers[0].Addr() != b.Bootstrap || brokers[0].ID() != controller {
			t.Fatalf("DescribeCluster: %d brokers (first %s, id %d), controller %d", len(brokers), brokers[0].Addr(), brokers[0].ID(), controller)
		}

		eventually(t, "the topic listed", func() error {
			topics, err := admin.ListTopics()
			if err != nil {
				return err
			}
			d, ok := topics[topic]
			if !ok {
				return fmt.Errorf("%s not listed", topic)
			}
			if d.NumPartitions != 3 || d.ReplicationFactor != 1 || d.ConfigEntries["retention.ms"] == nil || *d.ConfigEntries["retention.ms"] != hour {
				return fmt.Errorf("%s listed as %d partitions, replication factor %d, configs %v", topic, d.NumPartitions, d.ReplicationFactor, d.ConfigEntries)
			}
			return nil
		})

		entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		noErr(t, "DescribeConfig", err)
		found := false
		for _, e := range entries {
			if e.Name == "retention.ms" {
				found = true
				if e.Value != hour || e.Default || e.Source != sarama.SourceTopic {
					t.Fatalf("retention.ms described as %+v", e)
				}
			}
		}
		if !found {
			t.Fatal("DescribeConfig has no retention.ms")
		}

		noErr(t, "CreatePartitions", admin.CreatePartitions(topic, 5, nil, false))
		eventually(t, "5 partitions", func() error {
			md, err := admin.DescribeTopics([]string{topic})
			if err != nil {
				return err
			}
			if len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) || len(md[0].Partitions) != 5 {
				return fmt.Errorf("described %+v", md)
			}
			return nil
		})

		noErr(t, "DeleteTopic", admin.DeleteTopic(topic))
		eventually(t, "the topic gone", func() error {
			topics, err := admin.ListTopics()
			if err != nil {
				return err
			}
			if _, ok := topics[topic]; ok {
				return fmt.Errorf("%s still listed", topic)
			}
			return nil
		})
	})
}
