// franz-go's kgo client: producing with each acks setting and compression, reading back,
// a classic consumer group's commits surviving a restart, and key placement.
package clients

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strom.local/tests/go/harness"
)

func newKgo(t *testing.T, b harness.Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Bootstrap)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates topic with the broker's default partition count and replication
// factor (-1, -1: both brokers run with 4 partitions) and waits until its metadata says 4.
// franz-go does not ask the broker to auto-create topics unless told to
// (kgo.AllowAutoTopicCreation), so its tests create theirs.
func createTopic(ctx context.Context, t *testing.T, b harness.Broker, topic string) {
	t.Helper()
	adm := kadm.NewClient(newKgo(t, b))
	res, err := adm.CreateTopic(ctx, -1, -1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	eventually(t, "the new topic's metadata", func() error {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		if n := len(td[topic].Partitions); n != 4 || td[topic].Err != nil {
			return fmt.Errorf("%d partitions (%v), want 4", n, td[topic].Err)
		}
		return nil
	})
	// Metadata can name a leader before that broker serves the partition (Kafka answers
	// NOT_LEADER_OR_FOLLOWER for a moment); with acks=0 such an answer is a closed
	// connection and lost records, so the test waits until every partition answers.
	eventually(t, "the new topic's partitions to answer ListOffsets", func() error {
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		if err := lo.Error(); err != nil {
			return err
		}
		if n := len(lo[topic]); n != 4 {
			return fmt.Errorf("%d partitions listed", n)
		}
		return nil
	})
}

// produceKgo sends n keyed records with a header each and returns them as the broker
// placed them.
func produceKgo(ctx context.Context, t *testing.T, cl *kgo.Client, topic string, n int) []*kgo.Record {
	t.Helper()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{
			Topic:   topic,
			Key:     fmt.Appendf(nil, "key-%d", i%7),
			Value:   fmt.Appendf(nil, "value-%d", i),
			Headers: []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}},
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	return recs
}

// consumeAll reads every partition of topic from its start until want records came back.
func consumeAll(ctx context.Context, t *testing.T, b harness.Broker, topic string, partitions int32, want int) []*kgo.Record {
	t.Helper()
	assign := map[int32]kgo.Offset{}
	for p := range partitions {
		assign[p] = kgo.NewOffset().AtStart()
	}
	cl := newKgo(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline", len(got), want)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		got = append(got, fs.Records()...)
	}
	return got
}

// assertSameRecords checks that got holds exactly the records of want, partition by
// partition in produce order, with dense offsets from 0 and the same key, value,
// headers and timestamp.
func assertSameRecords(t *testing.T, want, got []*kgo.Record, checkProducedOffsets bool) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, sent %d", len(got), len(want))
	}
	byPartition := func(rs []*kgo.Record) map[int32][]*kgo.Record {
		m := map[int32][]*kgo.Record{}
		for _, r := range rs {
			m[r.Partition] = append(m[r.Partition], r)
		}
		return m
	}
	w, g := byPartition(want), byPartition(got)
	offsets := map[int32][]int64{}
	for p, ws := range w {
		gs := g[p]
		if len(gs) != len(ws) {
			t.Fatalf("partition %d: got %d records, sent %d", p, len(gs), len(ws))
		}
		for i := range ws {
			if checkProducedOffsets && ws[i].Offset != gs[i].Offset {
				t.Errorf("partition %d: produced at offset %d, read at %d", p, ws[i].Offset, gs[i].Offset)
			}
			if string(ws[i].Key) != string(gs[i].Key) || string(ws[i].Value) != string(gs[i].Value) {
				t.Errorf("partition %d offset %d: sent %q=%q, got %q=%q", p, gs[i].Offset, ws[i].Key, ws[i].Value, gs[i].Key, gs[i].Value)
			}
			if !reflect.DeepEqual(ws[i].Headers, gs[i].Headers) {
				t.Errorf("partition %d offset %d: headers %v, got %v", p, gs[i].Offset, ws[i].Headers, gs[i].Headers)
			}
			if !ws[i].Timestamp.Equal(gs[i].Timestamp) {
				t.Errorf("partition %d offset %d: timestamp %v, got %v", p, gs[i].Offset, ws[i].Timestamp, gs[i].Timestamp)
			}
			offsets[p] = append(offsets[p], gs[i].Offset)
		}
	}
	assertDense(t, offsets)
}

func TestFranzProduceAndConsumeBack(t *testing.T) {
	cases := []struct {
		name string
		opts []kgo.Opt
		// acks=0 gets no answer, so the produced records carry no offset to compare.
		offsetsKnown bool
	}{
		{"acks-all-idempotent-default", nil, true},
		{"acks-leader", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, true},
		{"acks-none", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, false},
		{"gzip", []kgo.Opt{kgo.ProducerBatchCompression(kgo.GzipCompression())}, true},
		{"snappy", []kgo.Opt{kgo.ProducerBatchCompression(kgo.SnappyCompression())}, true},
		{"lz4", []kgo.Opt{kgo.ProducerBatchCompression(kgo.Lz4Compression())}, true},
		{"zstd", []kgo.Opt{kgo.ProducerBatchCompression(kgo.ZstdCompression())}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			harness.Each(t, func(t *testing.T, b harness.Broker) {
				ctx := testContext(t)
				topic := harness.Unique("franz-produce")
				createTopic(ctx, t, b, topic)
				cl := newKgo(t, b, c.opts...)
				sent := produceKgo(ctx, t, cl, topic, 60)
				got := consumeAll(ctx, t, b, topic, 4, len(sent))
				assertSameRecords(t, sent, got, c.offsetsKnown)
			})
		})
	}
}

func TestFranzKeyPlacementMatchesKafka(t *testing.T) {
	placements := map[string]map[string]int32{}
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		topic := harness.Unique("franz-keys")
		createTopic(ctx, t, b, topic)
		recs := produceKgo(ctx, t, newKgo(t, b), topic, 70)
		placed := map[string]int32{}
		for _, r := range recs {
			if p, ok := placed[string(r.Key)]; ok && p != r.Partition {
				t.Fatalf("key %s went to partitions %d and %d", r.Key, p, r.Partition)
			}
			placed[string(r.Key)] = r.Partition
		}
		placements[b.Name] = placed
	})
	k, s := placements[harness.Kafka], placements[harness.Strom]
	if k != nil && s != nil && !reflect.DeepEqual(k, s) {
		t.Fatalf("keys went to other partitions: kafka %v, strom %v", k, s)
	}
}

// groupConsume joins group as a classic consumer group member (franz-go's default, not
// KIP-848), reads until want records came back, commits those of them at offsets below
// commitBelow and leaves the group. Auto-commit is off so that exactly those are committed.
func groupConsume(ctx context.Context, t *testing.T, b harness.Broker, group, topic string, want int, commitBelow int64) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Bootstrap),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("group %s consumed %d of %d records before the deadline", group, len(got), want)
		}
		for _, e := range fs.Errors() {
			t.Fatalf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
		}
		got = append(got, fs.Records()...)
	}
	var commit []*kgo.Record
	for _, r := range got {
		if r.Offset < commitBelow {
			commit = append(commit, r)
		}
	}
	if err := cl.CommitRecords(ctx, commit...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	// Nothing more may arrive: the test's count would hide a duplicate otherwise.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if fs := cl.PollFetches(short); len(fs.Records()) > 0 {
		t.Fatalf("group %s got %d records more than the %d produced", group, len(fs.Records()), want)
	}
	return got
}

func positions(rs []*kgo.Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d@%d=%s", r.Partition, r.Offset, r.Value))
	}
	sort.Strings(out)
	return out
}

func TestFranzGroupCommitsAndResumesAfterRestart(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		topic, group := harness.Unique("franz-group"), harness.Unique("franz-g")
		createTopic(ctx, t, b, topic)
		sent := produceKgo(ctx, t, newKgo(t, b), topic, 40)

		first := groupConsume(ctx, t, b, group, topic, len(sent), 3)
		if !reflect.DeepEqual(positions(first), positions(sent)) {
			t.Fatalf("first member read %v, sent %v", positions(first), positions(sent))
		}
		// A new member of the same group starts where the first one committed.
		var rest []*kgo.Record
		for _, r := range sent {
			if r.Offset >= 3 {
				rest = append(rest, r)
			}
		}
		second := groupConsume(ctx, t, b, group, topic, len(rest), 1<<62)
		if !reflect.DeepEqual(positions(second), positions(rest)) {
			t.Fatalf("after the restart the group read %v, want %v", positions(second), positions(rest))
		}
		// Everything is committed now: a third member has nothing to read.
		cl := newKgo(t, b, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit())
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		fs := cl.PollFetches(short)
		if n := len(fs.Records()); n > 0 {
			t.Fatalf("a third member read %d records after everything was committed", n)
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				t.Fatalf("third member: %s[%d]: %v", e.Topic, e.Partition, e.Err)
			}
		}
	})
}
