//! Which `__consumer_offsets` partition holds a group: Kafka's
//! `abs(groupId.hashCode()) % partitions`, with Java's `String.hashCode`, so a group lands
//! on the same partition number as it would in Kafka.

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over the UTF-16 code units of
/// the string, in wrapping 32-bit arithmetic. Characters outside the Basic Multilingual
/// Plane count as their two surrogates, as in Java.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition of `group_id` among `partitions` partitions.
///
/// Kafka's `Utils.abs` maps `i32::MIN` (whose absolute value does not fit) to 0, which
/// this follows. `partitions` below 1 is treated as 1.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(group_id);
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // "hello" and "polygenelubricants" are well-known Java values; the others were
        // computed independently (Python over UTF-16 code units, 32-bit wrapping).
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("console-consumer-12345"), 158_455_506);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        // A famous string whose hash is Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn hash_counts_utf16_code_units() {
        // U+1F600 is the surrogate pair D83D DE00: 0xD83D * 31 + 0xDE00.
        assert_eq!(java_string_hash("\u{1F600}"), 0xD83D * 31 + 0xDE00);
        // U+00E9 is a single code unit even though it is two bytes of UTF-8.
        assert_eq!(java_string_hash("é"), 0xE9);
    }

    #[test]
    fn partition_follows_kafka() {
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        assert_eq!(partition_for("console-consumer-12345", 50), 6);
        // A negative hash uses its absolute value.
        assert_eq!(partition_for("my-group", 50), 1_906_497_762 % 50);
        // Utils.abs(Integer.MIN_VALUE) == 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("anything", 1), 0);
        assert_eq!(partition_for("anything", 0), 0);
    }
}
