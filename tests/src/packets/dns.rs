//! DNS queries as a stub resolver sends them.

/// A standard query (recursion desired) for the A record of `name`, with message id `id`. The
/// name's labels go out as given: no case folding, no check of their lengths, so tests can send
/// what a careless or hostile client would.
pub fn query(name: &str, id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend([1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend(l.as_bytes());
    }
    q.extend([0, 0, 1, 0, 1]);
    q
}

#[cfg(test)]
mod tests {
    use super::query;

    #[test]
    fn a_query_is_a_header_one_question_and_type_a_class_in() {
        let q = query("www.example", 0xbeef);
        assert_eq!(&q[..12], &[0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..], b"\x03www\x07example\x00\x00\x01\x00\x01");
    }
}
