// Sarama's transactional producer: an aborted and a committed transaction, each with
// records and a group's offsets (AddOffsetsToTxn, TxnOffsetCommit), read back by
// Sarama consumers with IsolationLevel ReadCommitted and ReadUncommitted.
package clients

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"strom.local/tests/go/harness"
)

// saramaPartition reads partition 0 of topic from the oldest offset at the isolation
// level until it has want messages, then for a moment more, and returns "offset=value"
// of each.
func saramaPartition(t *testing.T, b harness.Broker, topic string, level sarama.IsolationLevel, want int) []string {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Consumer.IsolationLevel = level
	consumer, err := sarama.NewConsumer([]string{b.Bootstrap}, cfg)
	noErr(t, "NewConsumer", err)
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
	noErr(t, "ConsumePartition", err)
	defer pc.Close()
	var got []string
	linger := time.After(timeout)
	for {
		select {
		case m := <-pc.Messages():
			got = append(got, fmt.Sprintf("%d=%s", m.Offset, m.Value))
			if len(got) == want {
				linger = time.After(500 * time.Millisecond) // anything more would be wrong
			}
		case err := <-pc.Errors():
			t.Fatalf("partition 0: %v", err)
		case <-linger:
			return got
		}
	}
}

func TestSaramaTransactionCommitAndAbort(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		topic := harness.Unique("sarama-txn")
		createTopic(ctx, t, b, topic)
		group := harness.Unique("sarama-txn-g")

		// What Sarama requires of a transactional producer: idempotence, which needs
		// acks=all and one request in flight per broker.
		cfg := saramaConfig()
		cfg.Producer.Idempotent = true
		cfg.Producer.RequiredAcks = sarama.WaitForAll
		cfg.Net.MaxOpenRequests = 1
		cfg.Producer.Transaction.ID = harness.Unique("sarama-tx")
		cfg.Producer.Partitioner = sarama.NewManualPartitioner
		producer, err := sarama.NewSyncProducer([]string{b.Bootstrap}, cfg)
		noErr(t, "NewSyncProducer", err)
		defer producer.Close()

		adm := newKadm(t, b)
		groupOffset := func() (int64, bool) {
			offs, err := adm.FetchOffsets(ctx, group)
			noErr(t, "FetchOffsets", err)
			o, ok := offs.Lookup(topic, 0)
			return o.At, ok && o.At >= 0
		}

		transaction := func(prefix string, offset int64, commit bool) {
			noErr(t, "BeginTxn", producer.BeginTxn())
			var msgs []*sarama.ProducerMessage
			for i := range 3 {
				msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Partition: 0, Value: sarama.StringEncoder(fmt.Sprintf("%s%d", prefix, i))})
			}
			noErr(t, "SendMessages", producer.SendMessages(msgs))
			noErr(t, "AddOffsetsToTxn", producer.AddOffsetsToTxn(
				map[string][]*sarama.PartitionOffsetMetadata{topic: {{Partition: 0, Offset: offset}}}, group))
			if commit {
				noErr(t, "CommitTxn", producer.CommitTxn())
			} else {
				noErr(t, "AbortTxn", producer.AbortTxn())
			}
		}
		transaction("aborted", 3, false)
		if o, ok := groupOffset(); ok {
			t.Fatalf("the aborted transaction committed the group's offset %d", o)
		}
		transaction("committed", 6, true)
		eventually(t, "the group's offset is 6", func() error {
			if o, ok := groupOffset(); !ok || o != 6 {
				return fmt.Errorf("offset %d (%v)", o, ok)
			}
			return nil
		})

		// aborted0-2 at 0-2, ABORT at 3, committed0-2 at 4-6, COMMIT at 7.
		want := []string{"4=committed0", "5=committed1", "6=committed2"}
		if got := saramaPartition(t, b, topic, sarama.ReadCommitted, 3); !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadCommitted: %v, want %v", got, want)
		}
		want = append([]string{"0=aborted0", "1=aborted1", "2=aborted2"}, want...)
		if got := saramaPartition(t, b, topic, sarama.ReadUncommitted, 6); !reflect.DeepEqual(got, want) {
			t.Fatalf("ReadUncommitted: %v, want %v", got, want)
		}
	})
}
