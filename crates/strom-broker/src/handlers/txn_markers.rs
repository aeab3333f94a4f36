//! WriteTxnMarkers (v1): a transaction coordinator on another node asks this partition
//! leader to append COMMIT or ABORT markers; each partition's answer comes once its
//! marker is committed. An inter-broker API in Kafka, as here; without an authorizer
//! (issue 20) any client may call it, as with Kafka's default settings.

use std::sync::Arc;

use futures_util::future::join_all;
use strom_batch::ControlType;
use strom_log::TopicPartition;
use strom_wire::kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use strom_wire::kafka_protocol::messages::{
    ResponseKind, WriteTxnMarkersRequest, WriteTxnMarkersResponse,
};

use super::{Reply, Response};
use crate::broker::Broker;

pub(super) fn write_txn_markers(broker: &Arc<Broker>, req: WriteTxnMarkersRequest) -> Reply {
    let broker = broker.clone();
    Reply::Later(Box::pin(async move {
        let markers = req.markers.iter().map(|m| {
            let broker = &broker;
            async move {
                let kind = ControlType::of(m.transaction_result);
                let topics = m.topics.iter().map(|t| async move {
                    let partitions = t.partition_indexes.iter().map(|&p| async move {
                        let tp = TopicPartition::new(t.name.0.to_string(), p);
                        let code = broker
                            .txns()
                            .write_marker_committed(
                                &tp,
                                m.producer_id.0,
                                m.producer_epoch,
                                m.coordinator_epoch,
                                kind,
                            )
                            .await;
                        WritableTxnMarkerPartitionResult::default()
                            .with_partition_index(p)
                            .with_error_code(code.code())
                    });
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(join_all(partitions).await)
                });
                WritableTxnMarkerResult::default()
                    .with_producer_id(m.producer_id)
                    .with_topics(join_all(topics).await)
            }
        });
        let results = join_all(markers).await;
        Response::Kind(ResponseKind::WriteTxnMarkers(
            WriteTxnMarkersResponse::default().with_markers(results),
        ))
    }))
}
