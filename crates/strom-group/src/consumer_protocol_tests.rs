//! Tests of the consumer-protocol codec against bytes written out by hand from Kafka's
//! schemas, one case per version of each message.

use super::*;

/// Parts of a subscription, in order; version `v` has the first `2 + v` after the
/// version field (topics and user data, then one field per version).
fn subscription_parts() -> Vec<Vec<u8>> {
    vec![
        // topics: ["a", "bc"]
        vec![0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'],
        // user_data: [0xff]
        vec![0, 0, 0, 1, 0xff],
        // owned_partitions: [{a, [0, 2]}]
        vec![0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2],
        // generation_id: 7
        vec![0, 0, 0, 7],
        // rack_id: "r1"
        vec![0, 2, b'r', b'1'],
    ]
}

fn subscription_bytes(version: i16) -> Vec<u8> {
    let parts = subscription_parts();
    let fields = 2 + version.min(3) as usize;
    [version.to_be_bytes().to_vec(), parts[..fields].concat()].concat()
}

fn subscription_value(version: i16) -> Subscription {
    Subscription {
        topics: vec!["a".into(), "bc".into()],
        user_data: Some(Bytes::from_static(&[0xff])),
        owned_partitions: if version >= 1 {
            vec![TopicPartitions {
                topic: "a".into(),
                partitions: vec![0, 2],
            }]
        } else {
            Vec::new()
        },
        generation_id: if version >= 2 { 7 } else { -1 },
        rack_id: (version >= 3).then(|| "r1".into()),
    }
}

fn assignment_bytes(version: i16) -> Vec<u8> {
    [
        version.to_be_bytes().to_vec(),
        // assigned: [{a, [0, 2]}, {bc, [1]}]
        vec![0, 0, 0, 2],
        vec![0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2],
        vec![0, 2, b'b', b'c', 0, 0, 0, 1, 0, 0, 0, 1],
        // user_data: null
        vec![0xff, 0xff, 0xff, 0xff],
    ]
    .concat()
}

fn assignment_value() -> Assignment {
    Assignment {
        partitions: vec![
            TopicPartitions {
                topic: "a".into(),
                partitions: vec![0, 2],
            },
            TopicPartitions {
                topic: "bc".into(),
                partitions: vec![1],
            },
        ],
        user_data: None,
    }
}

#[test]
fn subscriptions_of_every_version_round_trip_through_hand_built_bytes() {
    for version in 0..=3 {
        let bytes = subscription_bytes(version);
        let value = subscription_value(version);
        assert_eq!(Subscription::decode(&bytes).unwrap(), value, "v{version}");
        assert_eq!(&value.encode(version)[..], &bytes[..], "v{version}");
    }
}

#[test]
fn assignments_of_every_version_round_trip_through_hand_built_bytes() {
    for version in 0..=3 {
        let bytes = assignment_bytes(version);
        assert_eq!(
            Assignment::decode(&bytes).unwrap(),
            assignment_value(),
            "v{version}"
        );
        assert_eq!(
            &assignment_value().encode(version)[..],
            &bytes[..],
            "v{version}"
        );
    }
    // With user data.
    let a = Assignment {
        user_data: Some(Bytes::from_static(b"ud")),
        ..assignment_value()
    };
    assert_eq!(Assignment::decode(&a.encode(1)).unwrap(), a);
}

#[test]
fn encoding_leaves_out_what_the_version_lacks() {
    // The v3 value written at v0 is the v0 bytes: owned partitions, generation and rack
    // are not on the wire.
    assert_eq!(
        &subscription_value(3).encode(0)[..],
        &subscription_bytes(0)[..]
    );
    // Versions beyond what the codec knows are written as the newest it knows.
    assert_eq!(
        &subscription_value(3).encode(9)[..],
        &subscription_bytes(3)[..]
    );
}

#[test]
fn newer_versions_are_read_as_the_newest_known_and_their_extra_fields_ignored() {
    let mut bytes = subscription_bytes(3);
    bytes[..2].copy_from_slice(&4i16.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 9, 1, 2, 3]);
    assert_eq!(Subscription::decode(&bytes).unwrap(), subscription_value(3));
    let mut bytes = assignment_bytes(0);
    bytes[..2].copy_from_slice(&5i16.to_be_bytes());
    bytes.push(0);
    assert_eq!(Assignment::decode(&bytes).unwrap(), assignment_value());
}

#[test]
fn truncated_messages_are_errors_at_every_length() {
    for version in 0..=3 {
        let bytes = subscription_bytes(version);
        for cut in 0..bytes.len() {
            assert!(
                Subscription::decode(&bytes[..cut]).is_err(),
                "subscription v{version} cut at {cut}"
            );
        }
        let bytes = assignment_bytes(version);
        // Zero bytes is the empty assignment, not a truncated one.
        for cut in 1..bytes.len() {
            assert!(
                Assignment::decode(&bytes[..cut]).is_err(),
                "assignment v{version} cut at {cut}"
            );
        }
    }
}

#[test]
fn empty_assignment_bytes_are_the_empty_assignment() {
    assert_eq!(Assignment::decode(&[]).unwrap(), Assignment::default());
    assert!(assigned_partitions(&[]).unwrap().is_empty());
}

#[test]
fn negative_versions_and_lying_counts_are_errors_not_panics() {
    assert!(matches!(
        Subscription::decode(&[0xff, 0xff]),
        Err(GroupError::UnsupportedVersion { version: -1, .. })
    ));
    assert!(matches!(
        Assignment::decode(&[0x80, 0x00]),
        Err(GroupError::UnsupportedVersion { .. })
    ));
    // 2^31-1 topics in six bytes.
    assert!(Subscription::decode(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    // One topic claiming 2^31-1 partitions.
    assert!(Assignment::decode(&[0, 0, 0, 0, 0, 1, 0, 1, b'a', 0x7f, 0xff, 0xff, 0xff]).is_err());
    // A null topic list.
    assert!(Subscription::decode(&[0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(subscribed_topics(b"").is_err());
    assert!(assigned_partitions(&[0, 0, 0, 0, 0, 1, 0, 1]).is_err());
}

#[test]
fn the_coordinators_views_read_through_the_codec() {
    let topics: Vec<_> = subscribed_topics(&subscription_bytes(3))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(topics, ["a", "bc"]);
    assert_eq!(
        assigned_partitions(&assignment_bytes(2)).unwrap(),
        [("a".into(), 0), ("a".into(), 2), ("bc".into(), 1)]
    );
    let bytes = encode::subscription(&["b", "a"]);
    let topics: Vec<_> = subscribed_topics(&bytes).unwrap().into_iter().collect();
    assert_eq!(topics, ["a", "b"]);
}
