//! A Fetch answer as the connection writes it and the metrics count it: the response
//! fields, and the records of each partition as a slice of a segment file (sent with
//! `sendfile`, never copied into the response).

use strom_log::FileSlice;
use strom_wire::FetchTopicOut;

/// A Fetch answer: the response fields, and for each partition (in order) the records
/// to send as a slice of a segment file.
#[derive(Debug)]
pub struct FetchOut {
    pub error_code: i16,
    pub topics: Vec<FetchTopicOut>,
    pub records: Vec<Option<FileSlice>>,
}
