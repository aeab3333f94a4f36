// franz-go's admin client kadm: topics, partitions, configs, the cluster, groups and
// their offsets, DeleteRecords and ListOffsets.
package clients

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"strom.local/tests/go/harness"
)

func newKadm(t *testing.T, b harness.Broker) *kadm.Client {
	return kadm.NewClient(newKgo(t, b))
}

// wantErr fails unless err is (or wraps) want.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func noErr(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestKadmTopics(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		adm := newKadm(t, b)
		kept, dropped := harness.Unique("kadm-topic"), harness.Unique("kadm-topic")

		created, err := adm.CreateTopics(ctx, 3, 1, nil, kept, dropped)
		noErr(t, "CreateTopics", err)
		for _, topic := range []string{kept, dropped} {
			r := created[topic]
			noErr(t, "create "+topic, r.Err)
			if r.NumPartitions != 3 || r.ReplicationFactor != 1 {
				t.Fatalf("create %s answered %d partitions, replication factor %d", topic, r.NumPartitions, r.ReplicationFactor)
			}
		}
		again, err := adm.CreateTopics(ctx, 3, 1, nil, kept)
		noErr(t, "CreateTopics again", err)
		wantErr(t, "creating an existing topic", again[kept].Err, kerr.TopicAlreadyExists)

		brokers, err := adm.ListBrokers(ctx)
		noErr(t, "ListBrokers", err)
		eventually(t, "both topics listed with 3 partitions", func() error {
			td, err := adm.ListTopics(ctx)
			if err != nil {
				return err
			}
			for _, topic := range []string{kept, dropped} {
				d, ok := td[topic]
				if !ok {
					return fmt.Errorf("%s not listed", topic)
				}
				if len(d.Partitions) != 3 {
					return fmt.Errorf("%s has %d partitions", topic, len(d.Partitions))
				}
				for _, p := range d.Partitions {
					if !slices.Contains(brokers.NodeIDs(), p.Leader) || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.Err != nil {
						return fmt.Errorf("%s[%d]: leader %d of %v, replicas %v, isr %v, %v", topic, p.Partition, p.Leader, brokers.NodeIDs(), p.Replicas, p.ISR, p.Err)
					}
				}
			}
			if _, ok := td["__consumer_offsets"]; ok {
				return errors.New("ListTopics (internal topics filtered) lists __consumer_offsets")
			}
			return nil
		})

		grown, err := adm.CreatePartitions(ctx, 2, kept)
		noErr(t, "CreatePartitions", err)
		noErr(t, "add 2 partitions", grown[kept].Err)
		eventually(t, "5 partitions after adding 2", func() error {
			td, err := adm.ListTopics(ctx, kept)
			if err != nil {
				return err
			}
			if n := len(td[kept].Partitions); n != 5 {
				return fmt.Errorf("%d partitions", n)
			}
			return nil
		})
		shrunk, err := adm.UpdatePartitions(ctx, 2, kept)
		noErr(t, "UpdatePartitions", err)
		wantErr(t, "shrinking a topic to 2 partitions", shrunk[kept].Err, kerr.InvalidPartitions)

		deleted, err := adm.DeleteTopics(ctx, dropped)
		noErr(t, "DeleteTopics", err)
		noErr(t, "delete "+dropped, deleted[dropped].Err)
		eventually(t, "the deleted topic gone", func() error {
			td, err := adm.ListTopics(ctx)
			if err != nil {
				return err
			}
			if _, ok := td[dropped]; ok {
				return fmt.Errorf("%s still listed", dropped)
			}
			return nil
		})
		td, err := adm.ListTopics(ctx, dropped)
		noErr(t, "ListTopics of the deleted topic", err)
		wantErr(t, "metadata of a deleted topic", td[dropped].Err, kerr.UnknownTopicOrPartition)
		gone, err := adm.DeleteTopics(ctx, dropped)
		noErr(t, "DeleteTopics again", err)
		wantErr(t, "deleting a deleted topic", gone[dropped].Err, kerr.UnknownTopicOrPartition)
	})
}

// configOf returns one config of a DescribeConfigs answer, failing if it is missing.
func configOf(t *testing.T, rc kadm.ResourceConfig, key string) kadm.Config {
	t.Helper()
	for _, c := range rc.Configs {
		if c.Key == key {
			return c
		}
	}
	var keys []string
	for _, c := range rc.Configs {
		keys = append(keys, c.Key+"="+c.MaybeValue())
	}
	t.Fatalf("%s: no config %s among %d: %v", rc.Name, key, len(keys), keys)
	return kadm.Config{}
}

func assertConfig(t *testing.T, adm *kadm.Client, ctx context.Context, topic, key, value string, source kmsg.ConfigSource) {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	noErr(t, "DescribeTopicConfigs", err)
	rc, err := rcs.On(topic, nil)
	noErr(t, "DescribeTopicConfigs "+topic, err)
	noErr(t, "DescribeTopicConfigs "+topic, rc.Err)
	c := configOf(t, rc, key)
	if c.Value == nil || *c.Value != value || c.Source != source {
		t.Fatalf("%s %s = %v (source %v), want %s (source %v)", topic, key, c.MaybeValue(), c.Source, value, source)
	}
}

func TestKadmConfigs(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		adm := newKadm(t, b)
		topic := harness.Unique("kadm-config")
		hour := "3600000"
		r, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"retention.ms": &hour}, topic)
		noErr(t, "CreateTopic", err)
		noErr(t, "CreateTopic", r.Err)

		assertConfig(t, adm, ctx, topic, "retention.ms", hour, kmsg.ConfigSourceDynamicTopicConfig)
		assertConfig(t, adm, ctx, topic, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)

		// IncrementalAlterConfigs: set one, set another, then delete the first.
		twoHours, maxBytes := "7200000", "2000000"
		res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "retention.ms", Value: &twoHours},
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: &maxBytes},
		}, topic)
		noErr(t, "AlterTopicConfigs", err)
		noErr(t, "AlterTopicConfigs", res[0].Err)
		assertConfig(t, adm, ctx, topic, "retention.ms", twoHours, kmsg.ConfigSourceDynamicTopicConfig)
		assertConfig(t, adm, ctx, topic, "max.message.bytes", maxBytes, kmsg.ConfigSourceDynamicTopicConfig)
		res, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
		noErr(t, "AlterTopicConfigs delete", err)
		noErr(t, "AlterTopicConfigs delete", res[0].Err)
		assertConfig(t, adm, ctx, topic, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)

		// An unknown config name is refused.
		bogus := "1"
		res, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: &bogus}}, topic)
		noErr(t, "AlterTopicConfigs unknown", err)
		wantErr(t, "setting an unknown topic config", res[0].Err, kerr.InvalidConfig)

		// AlterConfigs (not incremental) replaces the whole set: max.message.bytes, not
		// named, goes back to its default.
		segmentMs := "3600000"
		res, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: &segmentMs}}, topic)
		noErr(t, "AlterTopicConfigsState", err)
		noErr(t, "AlterTopicConfigsState", res[0].Err)
		assertConfig(t, adm, ctx, topic, "segment.ms", segmentMs, kmsg.ConfigSourceDynamicTopicConfig)
		assertConfig(t, adm, ctx, topic, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)

		// A broker's configs: both brokers run with 4 partitions for new topics.
		brokers, err := adm.ListBrokers(ctx)
		noErr(t, "ListBrokers", err)
		rcs, err := adm.DescribeBrokerConfigs(ctx, brokers.NodeIDs()[0])
		noErr(t, "DescribeBrokerConfigs", err)
		if len(rcs) != 1 {
			t.Fatalf("DescribeBrokerConfigs answered %d resources", len(rcs))
		}
		noErr(t, "DescribeBrokerConfigs", rcs[0].Err)
		if c := configOf(t, rcs[0], "num.partitions"); c.MaybeValue() != "4" {
			t.Fatalf("broker num.partitions = %q (source %v), want 4", c.MaybeValue(), c.Source)
		}
	})
}

func TestKadmCluster(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		cl := newKgo(t, b)
		adm := kadm.NewClient(cl)
		md, err := adm.BrokerMetadata(ctx)
		noErr(t, "BrokerMetadata", err)
		host, portText, _ := net.SplitHostPort(b.Bootstrap)
		port, _ := strconv.Atoi(portText)
		if len(md.Brokers) != 1 || md.Brokers[0].Host != host || md.Brokers[0].Port != int32(port) {
			t.Fatalf("brokers %+v, want one at %s", md.Brokers, b.Bootstrap)
		}
		if md.Cluster == "" || md.Controller != md.Brokers[0].NodeID {
			t.Fatalf("cluster id %q, controller %d, broker %d", md.Cluster, md.Controller, md.Brokers[0].NodeID)
		}
		listed, err := adm.ListBrokers(ctx)
		noErr(t, "ListBrokers", err)
		if !slices.Equal(listed.NodeIDs(), []int32{md.Brokers[0].NodeID}) {
			t.Fatalf("ListBrokers %v, metadata %v", listed.NodeIDs(), md.Brokers.NodeIDs())
		}

		// DescribeCluster (KIP-700), what Kafka's own Admin asks since 2.8.
		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
		noErr(t, "DescribeCluster", err)
		noErr(t, "DescribeCluster", kerr.ErrorForCode(dc.ErrorCode))
		if dc.ClusterID != md.Cluster || dc.ControllerID != md.Controller || len(dc.Brokers) != 1 || dc.Brokers[0].NodeID != md.Brokers[0].NodeID {
			t.Fatalf("DescribeCluster: cluster %q controller %d brokers %+v; metadata: %q %d %+v", dc.ClusterID, dc.ControllerID, dc.Brokers, md.Cluster, md.Controller, md.Brokers)
		}

		versions, err := adm.ApiVersions(ctx)
		noErr(t, "ApiVersions", err)
		versions.Each(func(v kadm.BrokerApiVersions) {
			noErr(t, "ApiVersions", v.Err)
			for _, key := range []int16{0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 19, 20, 32, 37, 44} {
				if min, max, ok := v.KeyVersions(key); !ok || min > max {
					t.Errorf("ApiVersions lacks %s (%d..%d)", kmsg.NameForKey(key), min, max)
				}
			}
		})
	})
}

func TestKadmGroupsAndOffsets(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		adm := newKadm(t, b)
		topic, group := harness.Unique("kadm-group"), harness.Unique("kadm-g")
		createTopic(ctx, t, b, topic)
		sent := produceKgo(ctx, t, newKgo(t, b), topic, 20)
		ends := map[int32]int64{}
		for _, r := range sent {
			ends[r.Partition] = r.Offset + 1
		}

		member := newKgo(t, b, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		for n := 0; n < len(sent); {
			fs := member.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", n, len(sent))
			}
			n += len(fs.Records())
		}
		noErr(t, "commit", member.CommitUncommittedOffsets(ctx))

		listed, err := adm.ListGroups(ctx)
		noErr(t, "ListGroups", err)
		lg, ok := listed[group]
		if !ok || lg.ProtocolType != "consumer" || lg.State != "Stable" {
			t.Fatalf("ListGroups: %+v (listed: %v)", lg, ok)
		}
		described, err := adm.DescribeGroups(ctx, group)
		noErr(t, "DescribeGroups", err)
		dg := described[group]
		noErr(t, "DescribeGroups", dg.Err)
		if dg.State != "Stable" || dg.ProtocolType != "consumer" || dg.Protocol != "cooperative-sticky" || len(dg.Members) != 1 {
			t.Fatalf("DescribeGroups: state %q, protocol type %q, protocol %q, %d members", dg.State, dg.ProtocolType, dg.Protocol, len(dg.Members))
		}
		if got := dg.AssignedPartitions().Sorted(); len(got) != 1 || len(got[0].Partitions) != 4 {
			t.Fatalf("assigned %v, want the 4 partitions of %s", got, topic)
		}

		fetched, err := adm.FetchOffsets(ctx, group)
		noErr(t, "FetchOffsets", err)
		for p, end := range ends {
			o, ok := fetched.Lookup(topic, p)
			if !ok || o.Err != nil || o.At != end {
				t.Fatalf("committed %s[%d] = %+v, want %d", topic, p, o, end)
			}
		}
		del, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
		noErr(t, "DeleteOffsets", err)
		wantErr(t, "deleting the offsets of a topic the group consumes", del.Error(), kerr.GroupSubscribedToTopic)

		member.Close()
		eventually(t, "the group empty after its member left", func() error {
			d, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				return err
			}
			if d[group].State != "Empty" || len(d[group].Members) != 0 {
				return fmt.Errorf("state %q, %d members", d[group].State, len(d[group].Members))
			}
			return nil
		})

		// An admin commit to the empty group, then deleting one partition's offset.
		var os kadm.Offsets
		os.AddOffset(topic, 0, 1, -1)
		committed, err := adm.CommitOffsets(ctx, group, os)
		noErr(t, "CommitOffsets", err)
		noErr(t, "CommitOffsets", committed.Error())
		fetched, err = adm.FetchOffsets(ctx, group)
		noErr(t, "FetchOffsets", err)
		if o, _ := fetched.Lookup(topic, 0); o.At != 1 {
			t.Fatalf("after CommitOffsets %s[0] = %+v, want 1", topic, o)
		}
		del, err = adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
		noErr(t, "DeleteOffsets", err)
		noErr(t, "DeleteOffsets", del.Error())
		fetched, err = adm.FetchOffsets(ctx, group)
		noErr(t, "FetchOffsets", err)
		if o, ok := fetched.Lookup(topic, 0); ok && o.At >= 0 {
			t.Fatalf("after DeleteOffsets %s[0] = %+v", topic, o)
		}
		if o, ok := fetched.Lookup(topic, 1); !ok || o.At != ends[1] {
			t.Fatalf("DeleteOffsets of partition 0 changed partition 1: %+v", o)
		}

		gone, err := adm.DeleteGroups(ctx, group)
		noErr(t, "DeleteGroups", err)
		noErr(t, "DeleteGroups", gone.Error())
		listed, err = adm.ListGroups(ctx)
		noErr(t, "ListGroups", err)
		if _, ok := listed[group]; ok {
			t.Fatalf("ListGroups still lists the deleted group %s", group)
		}
		gone, err = adm.DeleteGroups(ctx, group)
		noErr(t, "DeleteGroups again", err)
		wantErr(t, "deleting a deleted group", gone.Error(), kerr.GroupIDNotFound)
	})
}

func TestKadmDeleteRecordsAndListOffsets(t *testing.T) {
	harness.Each(t, func(t *testing.T, b harness.Broker) {
		ctx := testContext(t)
		adm := newKadm(t, b)
		topic := harness.Unique("kadm-offsets")
		r, err := adm.CreateTopic(ctx, 1, -1, nil, topic)
		noErr(t, "CreateTopic", err)
		noErr(t, "CreateTopic", r.Err)

		// Ten records a second apart, an hour ago.
		t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		var recs []*kgo.Record
		for i := range 10 {
			recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%d", i), Timestamp: t0.Add(time.Duration(i) * time.Second)})
		}
		noErr(t, "produce", newKgo(t, b).ProduceSync(ctx, recs...).FirstErr())

		list := func(what string, f func() (kadm.ListedOffsets, error)) kadm.ListedOffset {
			t.Helper()
			lo, err := f()
			noErr(t, what, err)
			o, ok := lo.Lookup(topic, 0)
			if !ok {
				t.Fatalf("%s: %s[0] not listed", what, topic)
			}
			noErr(t, what, o.Err)
			return o
		}
		start := func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) }
		end := func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) }
		after := func(ts time.Time) func() (kadm.ListedOffsets, error) {
			return func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, ts.UnixMilli(), topic) }
		}
		if o := list("start", start); o.Offset != 0 {
			t.Fatalf("start offset %d", o.Offset)
		}
		if o := list("end", end); o.Offset != 10 {
			t.Fatalf("end offset %d", o.Offset)
		}
		if o := list("after t0+3.5s", after(t0.Add(3500*time.Millisecond))); o.Offset != 4 || o.Timestamp != t0.Add(4*time.Second).UnixMilli() {
			t.Fatalf("first at or after t0+3.5 s: %+v, want offset 4 at t0+4 s", o)
		}
		if o := list("after t0-1h", after(t0.Add(-time.Hour))); o.Offset != 0 {
			t.Fatalf("first at or after an earlier time: %+v", o)
		}
		if o := list("after now", after(time.Now().Add(time.Hour))); o.Offset != 10 {
			t.Fatalf("first at or after a later time: %+v, want the end offset", o)
		}
		if o := list("max timestamp", func() (kadm.ListedOffsets, error) { return adm.ListMaxTimestampOffsets(ctx, topic) }); o.Offset != 9 {
			t.Fatalf("offset of the largest timestamp: %+v", o)
		}

		var to kadm.Offsets
		to.AddOffset(topic, 0, 3, -1)
		dr, err := adm.DeleteRecords(ctx, to)
		noErr(t, "DeleteRecords", err)
		d, _ := dr.Lookup(topic, 0)
		noErr(t, "DeleteRecords", d.Err)
		if d.LowWatermark != 3 {
			t.Fatalf("DeleteRecords to 3: low watermark %d", d.LowWatermark)
		}
		if o := list("start after DeleteRecords", start); o.Offset != 3 {
			t.Fatalf("start offset after DeleteRecords %d", o.Offset)
		}
		if o := list("after t0-1h after DeleteRecords", after(t0.Add(-time.Hour))); o.Offset != 3 {
			t.Fatalf("first at or after an earlier time after DeleteRecords: %+v", o)
		}
		var beyond kadm.Offsets
		beyond.AddOffset(topic, 0, 11, -1)
		dr, err = adm.DeleteRecords(ctx, beyond)
		noErr(t, "DeleteRecords beyond the end", err)
		d, _ = dr.Lookup(topic, 0)
		wantErr(t, "DeleteRecords beyond the end", d.Err, kerr.OffsetOutOfRange)

		got := consumeAll(ctx, t, b, topic, 1, 7)
		if got[0].Offset != 3 || got[len(got)-1].Offset != 9 {
			t.Fatalf("read offsets %d..%d after DeleteRecords, want 3..9", got[0].Offset, got[len(got)-1].Offset)
		}
	})
}
