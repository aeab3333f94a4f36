// franz-go transactions: a transactional producer's commit and abort as read_committed
// and read_uncommitted consumers see them, a GroupTransactSession's
// consume-transform-produce that ends with every input exactly once in the output, and
// kadm's ListTransactions, DescribeTransactions and DescribeProducers on an open one.
// Both Kafka 4.4 and Strom finalize transaction.version 2, so franz-go runs KIP-890 part 2
// on both; TestKadmTransactions checks the epoch bump that shows it.
package clients

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"strom.local/tests/go/harness"
)

// readCommitted is a consumer of every partition of topic from its start with
// isolation level read_committed.
func readCommitted(t *testing.T, b harness.Broker, topic string, partitions int32) *kgo.Client {
	t.Helper()
	assign := map[int32]kgo.Offset{}
	for p := range partitions {
		assign[p] = kgo.NewOffset().AtStart()
	}
	return newKgo(t, b,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
}

// pollValues polls cl until it has want records, then once more for a moment to see
// that nothing else comes, and returns "partition/offset=value" of each, sorted.
func pollValues(ctx context.Context, t *testing.T, cl *kgo.Client, want int) []string {
	t.Helper()
	var got []string
	add := func(fs kgo.Fetches) {
		for _, e := range fs.Errors() {
			if e.Err != context.DeadlineExceeded {
				t.Fatalf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
			}
		}
		fs.EachRecord(func(r *kgo.Record) {
			got = append(got, fmt.Sprintf("%d/%d=%s", r.Partition, r.Offset, r.Value))
		})
	}
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before the deadline: %v", len(got), want, got)
		}
		add(fs)
	}
	extra, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	add(cl.PollFetches(extra))
	sort.Strings(got)
	return got
}

// onePartition sends every record to the partition it names.
var onePartition = kgo.RecordPartitioner(kgo.ManualPartitioner())

func TestFranzTransactionCommitAndAbort(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		topic := harness.Unique("txn")
		createTopic(ctx, t, b, topic)
		cl := newKgo(t, b, kgo.TransactionalID(harness.Unique("tx")), onePartition)
		produce := func(prefix string, end kgo.TransactionEndTry) {
			noErr(t, "BeginTransaction", cl.BeginTransaction())
			var recs []*kgo.Record
			for i := range 6 {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "%s%d", prefix, i)})
			}
			noErr(t, "produce", cl.ProduceSync(ctx, recs...).FirstErr())
			noErr(t, "EndTransaction", cl.EndTransaction(ctx, end))
		}
		produce("aborted", kgo.TryAbort)
		produce("committed", kgo.TryCommit)

		// Partitions 0 and 1: aborted records at 0-2, ABORT at 3, committed at 4-6, COMMIT at 7.
		want := []string{
			"0/4=committed0", "0/5=committed2", "0/6=committed4",
			"1/4=committed1", "1/5=committed3", "1/6=committed5",
		}
		if got := pollValues(ctx, t, readCommitted(t, b, topic, 4), 6); !reflect.DeepEqual(got, want) {
			t.Fatalf("read_committed: %v, want %v", got, want)
		}
		want = append(want, "0/0=aborted0", "0/1=aborted2", "0/2=aborted4", "1/0=aborted1", "1/1=aborted3", "1/2=aborted5")
		sort.Strings(want)
		if got := pollValues(ctx, t, readUncommitted(t, b, topic, 4), 12); !reflect.DeepEqual(got, want) {
			t.Fatalf("read_uncommitted: %v, want %v", got, want)
		}
	})
}

func readUncommitted(t *testing.T, b harness.Broker, topic string, partitions int32) *kgo.Client {
	t.Helper()
	assign := map[int32]kgo.Offset{}
	for p := range partitions {
		assign[p] = kgo.NewOffset().AtStart()
	}
	return newKgo(t, b, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
}

// TestFranzGroupTransactSessionExactlyOnce copies an input topic to an output topic
// with kgo's GroupTransactSession: the first transaction is aborted (the session
// rewinds to the group's committed offsets), the session stops half way and a second
// one, same group and transactional id, finishes. The output then holds every input
// exactly once for read_committed, and the group's offsets are at the input's end.
func TestFranzGroupTransactSessionExactlyOnce(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		in, out := harness.Unique("eos-in"), harness.Unique("eos-out")
		createTopic(ctx, t, b, in)
		createTopic(ctx, t, b, out)
		const n = 40
		var input []*kgo.Record
		for i := range n {
			input = append(input, &kgo.Record{Topic: in, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
		}
		noErr(t, "produce the input", newKgo(t, b).ProduceSync(ctx, input...).FirstErr())

		group, txnID := harness.Unique("eos-g"), harness.Unique("eos-tx")
		committed := 0 // input records whose transaction committed
		// run is one session: it aborts its first transaction when abortFirst, and stops
		// once `until` inputs are committed.
		run := func(abortFirst bool, until int) {
			sess, err := kgo.NewGroupTransactSession(
				kgo.SeedBrokers(b.Bootstrap),
				kgo.ConsumerGroup(group),
				kgo.ConsumeTopics(in),
				kgo.TransactionalID(txnID),
				kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			)
			noErr(t, "NewGroupTransactSession", err)
			defer sess.Close()
			first := true
			for committed < until {
				fs := sess.PollRecords(ctx, 10)
				if ctx.Err() != nil {
					t.Fatalf("%d of %d inputs committed before the deadline", committed, n)
				}
				for _, e := range fs.Errors() {
					t.Fatalf("fetch %s[%d]: %v", e.Topic, e.Partition, e.Err)
				}
				recs := fs.Records()
				if len(recs) == 0 {
					continue
				}
				noErr(t, "Begin", sess.Begin())
				for _, r := range recs {
					sess.Produce(ctx, &kgo.Record{Topic: out, Key: r.Key, Value: append([]byte("out-"), r.Value...)}, nil)
				}
				end := kgo.TryCommit
				if first && abortFirst {
					end = kgo.TryAbort
				}
				first = false
				ok, err := sess.End(ctx, end)
				noErr(t, "End", err)
				if ok != bool(end) {
					t.Fatalf("End(%v) reported committed=%v", end, ok)
				}
				if ok {
					committed += len(recs)
				}
			}
		}
		run(true, n/2)
		run(false, n)
		if committed != n {
			t.Fatalf("%d inputs committed, want %d", committed, n)
		}

		got := pollValues(ctx, t, readCommitted(t, b, out, 4), n)
		seen := map[string]int{}
		for _, g := range got {
			var p, o int
			var v string
			if _, err := fmt.Sscanf(g, "%d/%d=%s", &p, &o, &v); err != nil {
				t.Fatal(err)
			}
			seen[v]++
		}
		for i := range n {
			if c := seen[fmt.Sprintf("out-v%d", i)]; c != 1 {
				t.Fatalf("out-v%d is %d times in the committed output: %v", i, c, got)
			}
		}
		if len(got) != n {
			t.Fatalf("%d committed outputs, want %d", len(got), n)
		}

		adm := newKadm(t, b)
		ends, err := adm.ListEndOffsets(ctx, in)
		noErr(t, "ListEndOffsets", err)
		offs, err := adm.FetchOffsets(ctx, group)
		noErr(t, "FetchOffsets", err)
		ends.Each(func(lo kadm.ListedOffset) {
			c, ok := offs.Lookup(in, lo.Partition)
			if !ok || c.At != lo.Offset {
				t.Fatalf("group offset of %s[%d]: %v (%v), want the end %d", in, lo.Partition, c.At, ok, lo.Offset)
			}
		})
	})
}

// TestKadmTransactions describes a transaction left open: ListTransactions,
// DescribeTransactions and DescribeProducers name the same producer, and ListOffsets
// stops at the last stable offset for read_committed until it commits.
func TestKadmTransactions(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		topic := harness.Unique("txadm")
		createTopic(ctx, t, b, topic)
		noErr(t, "produce", newKgo(t, b, onePartition).ProduceSync(ctx,
			&kgo.Record{Topic: topic, Partition: 0, Value: []byte("plain0")},
			&kgo.Record{Topic: topic, Partition: 0, Value: []byte("plain1")}).FirstErr())

		txnID := harness.Unique("tx")
		cl := newKgo(t, b, kgo.TransactionalID(txnID), onePartition)
		noErr(t, "BeginTransaction", cl.BeginTransaction())
		var recs []*kgo.Record
		for i := range 3 {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "open%d", i)})
		}
		noErr(t, "produce", cl.ProduceSync(ctx, recs...).FirstErr()) // offsets 2-4, open

		adm := newKadm(t, b)
		lso := func() int64 {
			lo, err := adm.ListCommittedOffsets(ctx, topic)
			noErr(t, "ListCommittedOffsets", err)
			o, _ := lo.Lookup(topic, 0)
			noErr(t, "ListCommittedOffsets[0]", o.Err)
			return o.Offset
		}
		hw := func() int64 {
			lo, err := adm.ListEndOffsets(ctx, topic)
			noErr(t, "ListEndOffsets", err)
			o, _ := lo.Lookup(topic, 0)
			noErr(t, "ListEndOffsets[0]", o.Err)
			return o.Offset
		}
		if l, h := lso(), hw(); l != 2 || h != 5 {
			t.Fatalf("read_committed end %d, read_uncommitted end %d; want 2 and 5", l, h)
		}

		listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
		noErr(t, "ListTransactions", err)
		mine, ok := listed[txnID]
		if !ok || mine.State != "Ongoing" {
			t.Fatalf("%s not Ongoing among %v", txnID, listed.Sorted())
		}

		described, err := adm.DescribeTransactions(ctx, txnID)
		noErr(t, "DescribeTransactions", err)
		d := described[txnID]
		noErr(t, "DescribeTransactions "+txnID, d.Err)
		if d.State != "Ongoing" || d.ProducerID != mine.ProducerID || !reflect.DeepEqual(d.Topics, kadm.TopicsSet{topic: {0: {}}}) {
			t.Fatalf("described %+v; want Ongoing, producer %d, %s[0]", d, mine.ProducerID, topic)
		}

		producers, err := adm.DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		noErr(t, "DescribeProducers", err)
		part := producers[topic].Partitions[0]
		noErr(t, "DescribeProducers[0]", part.Err)
		p, ok := part.ActiveProducers[mine.ProducerID]
		if !ok {
			t.Fatalf("producer %d not among %v", mine.ProducerID, part.ActiveProducers.Sorted())
		}
		if p.CurrentTxnStartOffset != 2 || p.LastSequence != 2 || p.ProducerEpoch != d.ProducerEpoch {
			t.Fatalf("producer state %+v; want transaction start 2, last sequence 2, epoch %d", p, d.ProducerEpoch)
		}
		open := 0
		for _, s := range part.ActiveProducers {
			if s.CurrentTxnStartOffset >= 0 {
				open++
			}
		}
		if open != 1 {
			t.Fatalf("%d producers with an open transaction: %v", open, part.ActiveProducers.Sorted())
		}

		noErr(t, "EndTransaction", cl.EndTransaction(ctx, kgo.TryCommit))
		eventually(t, "the LSO passes the COMMIT marker", func() error {
			if l := lso(); l != 6 {
				return fmt.Errorf("read_committed end %d, want 6", l)
			}
			return nil
		})
		eventually(t, "the transaction completes", func() error {
			described, err := adm.DescribeTransactions(ctx, txnID)
			if err != nil {
				return err
			}
			if s := described[txnID].State; s != "CompleteCommit" {
				return fmt.Errorf("state %s", s)
			}
			return nil
		})

		// franz-go, like the Java client, runs transaction version 2 (KIP-890 part 2) where
		// the broker finalizes the transaction.version feature, as both do: EndTxn bumps
		// the epoch.
		described, err = adm.DescribeTransactions(ctx, txnID)
		noErr(t, "DescribeTransactions", err)
		want := d.ProducerEpoch + 1
		if e := described[txnID].ProducerEpoch; e != want {
			t.Fatalf("epoch after the commit %d, want %d (it was %d while open)", e, want, d.ProducerEpoch)
		}
	})
}
