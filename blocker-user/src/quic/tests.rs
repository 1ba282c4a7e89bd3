//! The reader as a whole: datagrams in, server names out.

use super::decrypt::{InitialCipher, Plain};
use super::packet::PacketType;
use super::reassembly::tests::client_hello;
use super::wire::put_varint;
use super::*;

const DCID: [u8; 8] = [0xc1, 0x1e, 0x47, 0x00, 0x00, 0x00, 0x00, 0x01];

fn crypto(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![frames::CRYPTO];
    put_varint(&mut f, offset as u64);
    put_varint(&mut f, data.len() as u64);
    f.extend_from_slice(data);
    f
}

/// A client Initial of `version` for `dcid`, packet number `pn`, carrying `frames` padded so the
/// packet is 1200 bytes (as clients pad them).
fn initial(version: Version, dcid: &[u8], pn: u64, frames: &[u8]) -> Vec<u8> {
    let cipher = InitialCipher::client(version, dcid);
    // The header with a 2-byte Length, the size it has in a 1200-byte packet.
    let header = cipher.header(&Plain::initial(dcid, pn, &[0; 1000])).len();
    let target = 1200 - header - decrypt::TAG_LEN;
    assert!(frames.len() <= target, "frames too long for one packet");
    let mut payload = frames.to_vec();
    payload.resize(target, 0);
    let d = cipher.protect(&Plain::initial(dcid, pn, &payload));
    assert_eq!(d.len(), 1200);
    d
}

/// The first flight of a ClientHello split at `at`: two Initials, packet numbers 0 and 1.
fn two_packets(version: Version, dcid: &[u8], hello: &[u8], at: usize) -> [Vec<u8>; 2] {
    [initial(version, dcid, 0, &crypto(0, &hello[..at])), initial(version, dcid, 1, &crypto(at, &hello[at..]))]
}

/// A protected packet of another type (0-RTT, Handshake): nobody here can open it.
fn other_packet(version: Version, ty: PacketType, dcid: &[u8], len: usize) -> Vec<u8> {
    let cipher = InitialCipher::client(version, b"some other keys");
    let payload = vec![0x01; len];
    cipher.protect(&Plain { packet_type: ty, ..Plain::initial(dcid, 0, &payload) })
}

/// A post-quantum sized ClientHello: too big for one Initial.
fn big_hello(name: &str) -> Vec<u8> {
    client_hello(Some(name), 1900)
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn the_rfc_9001_and_rfc_9369_client_initials_name_example_com() {
    let v1 = vectors::v1_packet();
    let v2 = vectors::v2_packet();
    assert_eq!(client_hello_sni(&[&v1]), Ok(Some("example.com".into())));
    assert_eq!(client_hello_sni(&[&v2]), Ok(Some("example.com".into())));
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&v1), Progress::Sni("example.com".into()));
    assert_eq!(r.feed(&v2), Progress::Sni("example.com".into()));
    let s = r.stats();
    assert_eq!((s.datagrams, s.initials, s.sni, s.connections), (2, 2, 2, 2), "v1 and v2 are two connections");
}

#[test]
fn the_rfc_client_hello_split_over_two_initials_needs_both() {
    let hello = vectors::client_hello();
    for version in [Version::V1, Version::V2] {
        let [a, b] = two_packets(version, &vectors::dcid(), &hello, 100);
        let mut r = Reader::new(Limits::default());
        assert_eq!(r.feed(&a), Progress::NeedMore);
        assert_eq!(r.feed(&b), Progress::Sni("example.com".into()));
        assert_eq!(client_hello_sni(&[&a, &b]), Ok(Some("example.com".into())));
        assert_eq!(client_hello_sni(&[&a]), Err(QuicError::Incomplete));
    }
}

#[test]
fn a_post_quantum_client_hello_spans_two_packets_in_either_order() {
    let hello = big_hello("pq.example.net");
    assert!(hello.len() > 1200);
    for version in [Version::V1, Version::V2] {
        let [a, b] = two_packets(version, &DCID, &hello, 1100);
        let mut r = Reader::new(Limits::default());
        assert_eq!(r.feed(&b), Progress::NeedMore, "second packet first");
        assert_eq!(r.feed(&a), Progress::Sni("pq.example.net".into()));
        assert_eq!(client_hello_sni(&[&b, &a]), Ok(Some("pq.example.net".into())));
    }
}

#[test]
fn crypto_frames_scattered_out_of_order_with_ping_and_padding_between_them() {
    // As Chromium does: cut the ClientHello, shuffle the pieces, sprinkle PING and PADDING.
    let hello = client_hello(Some("chaos.example.org"), 800);
    let cuts = [0, 7, 90, 91, 300, 520, hello.len()];
    let mut payload = vec![frames::PING];
    for i in [4, 0, 5, 2, 1, 3] {
        payload.extend(crypto(cuts[i], &hello[cuts[i]..cuts[i + 1]]));
        payload.extend([frames::PING, 0, 0, 0]);
    }
    // And an overlapping retransmission of the middle.
    payload.extend(crypto(50, &hello[50..400]));
    let d = initial(Version::V1, &DCID, 0, &payload);
    assert_eq!(client_hello_sni(&[&d]), Ok(Some("chaos.example.org".into())));
}

#[test]
fn coalesced_initial_0rtt_and_handshake_packets_read_as_the_initial() {
    let hello = client_hello(Some("coalesced.example"), 400);
    let cipher = InitialCipher::client(Version::V1, &DCID);
    let frames = crypto(0, &hello);
    let mut d = cipher.protect(&Plain::initial(&DCID, 0, &frames));
    d.extend(other_packet(Version::V1, PacketType::ZeroRtt, &DCID, 100));
    d.extend(other_packet(Version::V1, PacketType::Handshake, &DCID, 50));
    d.resize(1200, 0); // zero padding after the last packet
    assert_eq!(client_hello_sni(&[&d]), Ok(Some("coalesced.example".into())));

    // Two Initials coalesced: both halves of a ClientHello in one datagram.
    let big = big_hello("both.example");
    let mut d = cipher.protect(&Plain::initial(&DCID, 0, &crypto(0, &big[..900])));
    d.extend(cipher.protect(&Plain::initial(&DCID, 1, &crypto(900, &big[900..]))));
    assert_eq!(client_hello_sni(&[&d]), Ok(Some("both.example".into())));

    // A datagram with only 0-RTT or Handshake packets has nothing to read.
    let hs = other_packet(Version::V2, PacketType::Handshake, &DCID, 1100);
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.try_feed(&hs), Ok(Progress::NotQuic));
}

#[test]
fn a_coalesced_packet_with_another_dcid_is_ignored() {
    let hello = client_hello(Some("first.example"), 300);
    let other = client_hello(Some("second.example"), 300);
    // The first packet has only the first half of its ClientHello; the one coalesced after it,
    // for another connection, would complete a ClientHello of its own.
    let mut d = InitialCipher::client(Version::V1, &DCID).protect(&Plain::initial(&DCID, 0, &crypto(0, &hello[..50])));
    let dcid2 = [9; 8];
    d.extend(InitialCipher::client(Version::V1, &dcid2).protect(&Plain::initial(&dcid2, 0, &crypto(0, &other))));
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&d), Progress::NeedMore);
    assert_eq!(r.stats().connections, 1);
}

#[test]
fn a_client_hello_without_server_name_is_no_sni() {
    let d = initial(Version::V2, &DCID, 0, &crypto(0, &client_hello(None, 300)));
    assert_eq!(client_hello_sni(&[&d]), Ok(None));
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&d), Progress::NoSni);
    assert_eq!(r.stats().no_sni, 1);
}

#[test]
fn later_initials_of_a_finished_connection_repeat_its_answer() {
    let [a, b] = two_packets(Version::V1, &DCID, &big_hello("again.example"), 1000);
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&a), Progress::NeedMore);
    assert_eq!(r.feed(&b), Progress::Sni("again.example".into()));
    // The client retransmits its first packet (with a new packet number, as QUIC does).
    let again = initial(Version::V1, &DCID, 2, &crypto(0, &big_hello("again.example")[..1000]));
    assert_eq!(r.feed(&again), Progress::Sni("again.example".into()));
    assert_eq!(r.feed(&a), Progress::Sni("again.example".into()));
    let s = r.stats();
    assert_eq!((s.sni, s.connections), (1, 1));
    assert!(s.memory < 2 * CONN_OVERHEAD, "the buffer is released once the name is read: {}", s.memory);
}

#[test]
fn a_tampered_tag_is_a_decryption_error_and_leaves_no_state() {
    let mut d = vectors::v1_packet();
    d[1199] ^= 0x01;
    assert_eq!(client_hello_sni(&[&d]), Err(QuicError::Decrypt(DecryptError::Authentication)));
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&d), Progress::NotQuic);
    let s = r.stats();
    assert_eq!((s.undecryptable, s.not_quic, s.connections, s.memory), (1, 1, 0, 0));
    // A tampered packet of a connection being read does not disturb it.
    let [a, b] = two_packets(Version::V1, &DCID, &big_hello("kept.example"), 1000);
    let mut bad = b.clone();
    bad[700] ^= 0x20;
    assert_eq!(r.feed(&a), Progress::NeedMore);
    assert_eq!(r.try_feed(&bad), Err(QuicError::Decrypt(DecryptError::Authentication)));
    assert_eq!(r.feed(&b), Progress::Sni("kept.example".into()));
}

#[test]
fn other_versions_and_version_negotiation_are_not_read() {
    let mut d = vectors::v1_packet();
    d[1..5].copy_from_slice(&0xff00_001d_u32.to_be_bytes()); // draft-29
    assert_eq!(client_hello_sni(&[&d]), Err(QuicError::Packet(PacketError::UnsupportedVersion(0xff00_001d))));
    d[1..5].copy_from_slice(&0u32.to_be_bytes());
    assert_eq!(client_hello_sni(&[&d]), Err(QuicError::Packet(PacketError::VersionNegotiation)));
    // Version 2's packet with version 1 in its version field: other type bits (0-RTT), nothing read.
    let mut d = vectors::v2_packet();
    d[1..5].copy_from_slice(&1u32.to_be_bytes());
    // (As a 0-RTT packet it has no token field: its token length 0 reads as Length 0.)
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&d), Progress::NotQuic);
    assert_eq!(client_hello_sni(&[&d]), Err(QuicError::Packet(PacketError::NoPacketNumber)));
    assert_eq!(client_hello_sni(&[]), Err(QuicError::NoInitial));
}

#[test]
fn the_rfc_packet_truncated_at_every_length_is_an_error_never_a_panic() {
    let d = vectors::v1_packet();
    let mut r = Reader::new(Limits::default());
    for len in 0..d.len() {
        assert_eq!(r.feed(&d[..len]), Progress::NotQuic, "{len}");
        // The same cut with the Length field fixed up to match: the packet parses, and fails to open.
        if len >= 18 + 20 {
            let mut cut = d[..len].to_vec();
            cut[16..18].copy_from_slice(&(0x4000 | (len - 18) as u16).to_be_bytes());
            assert!(matches!(r.try_feed(&cut), Err(QuicError::Decrypt(DecryptError::Authentication))), "{len}");
        }
    }
    assert_eq!(r.stats().connections, 0);
    assert_eq!(r.feed(&d), Progress::Sni("example.com".into()));
}

#[test]
fn garbage_on_udp_443_is_not_quic_and_leaves_no_state() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut r = Reader::new(Limits::default());
    for i in 0..3000 {
        let len = (rng.next() % 1500) as usize;
        let mut d = rng.bytes(len);
        // A third of them look like Initials of version 1 or 2 up to the connection IDs.
        if i % 3 == 0 && d.len() > 6 {
            let version = if i % 2 == 0 { Version::V1 } else { Version::V2 };
            d[0] = 0xc0 | (version.type_bits(PacketType::Initial) << 4) | (d[0] & 0x0f);
            d[1..5].copy_from_slice(&version.wire().to_be_bytes());
            d[5] %= 21;
        }
        assert_eq!(r.feed(&d), Progress::NotQuic, "datagram {i}");
    }
    // Random payloads behind a valid header: the header parses, the payload does not open.
    for _ in 0..200 {
        let mut d = vectors::v1_packet();
        let noise = rng.bytes(1200 - 22);
        d[22..].copy_from_slice(&noise);
        assert_eq!(r.try_feed(&d), Err(QuicError::Decrypt(DecryptError::Authentication)));
    }
    let s = r.stats();
    assert_eq!((s.connections, s.memory, s.initials, s.not_quic), (0, 0, 0, 3200));
}

#[test]
fn frames_initials_may_not_carry_and_client_closes_end_the_connection() {
    let stream = [0x08, 0x00, 0x01, b'x']; // STREAM
    let d = initial(Version::V1, &DCID, 0, &stream);
    assert_eq!(client_hello_sni(&[&d]), Err(QuicError::Frame(FrameError::NotAllowedInInitial(8))));
    let close = [frames::CONNECTION_CLOSE, 0x0a, 0x00, 0x00];
    let d = initial(Version::V1, &DCID, 0, &close);
    assert_eq!(client_hello_sni(&[&d]), Err(QuicError::ClosedByClient));
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(&d), Progress::NotQuic);
    assert_eq!(r.stats().failed, 1);
}

#[test]
fn client_hellos_beyond_the_limit_fail_open() {
    let hello = client_hello(Some("huge.example"), 2200);
    assert!(hello.len() > 2048);
    let limits = Limits { max_client_hello: 2048, ..Limits::default() };
    let mut r = Reader::new(limits);
    let [a, b] = two_packets(Version::V1, &DCID, &hello, 1100);
    // The handshake header in the first packet is enough to give up.
    assert_eq!(
        r.try_feed(&a),
        Err(QuicError::Reassembly(ReassemblyError::TooLarge { length: hello.len(), limit: 2048 }))
    );
    assert_eq!(r.feed(&b), Progress::NotQuic, "the connection stays failed");
    let s = r.stats();
    assert_eq!((s.failed, s.connections), (1, 1));
    assert!(s.memory <= CONN_OVERHEAD);
}

#[test]
fn the_oldest_connections_are_evicted_at_the_connection_limit() {
    let mut r = Reader::new(Limits { max_connections: 3, ..Limits::default() });
    let flights: Vec<_> =
        (0..5u8).map(|i| two_packets(Version::V1, &[i; 8], &big_hello(&format!("c{i}.example")), 1000)).collect();
    for [a, _] in &flights {
        assert_eq!(r.feed(a), Progress::NeedMore);
    }
    let s = r.stats();
    assert_eq!((s.connections, s.evictions), (3, 2));
    // The newest three finish; the two oldest lost their first halves.
    for (i, [_, b]) in flights.iter().enumerate().skip(2) {
        assert_eq!(r.feed(b), Progress::Sni(format!("c{i}.example")));
    }
    assert_eq!(r.feed(&flights[0][1]), Progress::NeedMore);
    assert_eq!(r.stats().evictions, 3);
}

#[test]
fn the_oldest_connections_are_evicted_at_the_memory_limit() {
    let max_memory = 4 * (CONN_OVERHEAD + 2200);
    let mut r = Reader::new(Limits { max_memory, ..Limits::default() });
    for i in 0..50u8 {
        let [a, _] = two_packets(Version::V2, &[i; 20], &big_hello("m.example"), 1100);
        assert_eq!(r.feed(&a), Progress::NeedMore);
        assert!(r.stats().memory <= max_memory, "{} > {max_memory}", r.stats().memory);
    }
    let s = r.stats();
    assert!(s.connections >= 3 && s.evictions >= 45, "{s:?}");
}

#[test]
fn initials_with_a_token_a_source_id_and_short_packet_numbers_are_read() {
    let hello = big_hello("token.example");
    let dcid = [0x77; 20];
    let cipher = InitialCipher::client(Version::V2, &dcid);
    let token = [0xee; 90];
    let mut r = Reader::new(Limits::default());
    for (pn, (from, to)) in [(7u64, (1000, hello.len())), (8, (0, 1000))] {
        let frames = crypto(from, &hello[from..to]);
        let p = Plain { scid: &[1, 2, 3, 4, 5], token: &token, pn_len: 1, ..Plain::initial(&dcid, pn, &frames) };
        let d = cipher.protect(&p);
        let expect = if pn == 7 { Progress::NeedMore } else { Progress::Sni("token.example".into()) };
        assert_eq!(r.feed(&d), expect);
    }
}

#[test]
fn the_fixed_cost_per_connection_covers_what_a_connection_holds() {
    let held = std::mem::size_of::<Conn>()
        + std::mem::size_of::<InitialCipher>()
        + std::mem::size_of::<ConnKey>() * 2
        + std::mem::size_of::<u64>() * 2;
    assert!(held <= CONN_OVERHEAD, "{held} bytes per connection, {CONN_OVERHEAD} counted");
}

/// The datagrams of a capture in `testdata/`: (connection, packet number, UDP payload).
fn capture(text: &str) -> Vec<(char, u64, Vec<u8>)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            let conn = f.next().unwrap().chars().next().unwrap();
            let pn = f.next().unwrap().parse().unwrap();
            (conn, pn, wire::hex(f.next().unwrap()))
        })
        .collect()
}

fn datagram(c: &[(char, u64, Vec<u8>)], conn: char, pn: u64) -> &[u8] {
    &c.iter().find(|(k, p, _)| *k == conn && *p == pn).unwrap().2
}

const CHROMIUM_V1: &str = include_str!("testdata/chromium-156-v1.txt");
const CHROMIUM_V2: &str = include_str!("testdata/chromium-156-v2.txt");
const CHROMIUM_NAME: &str = "quic.example.test";

#[test]
fn chromium_sends_its_post_quantum_client_hello_in_two_initials_scattered_over_crypto_frames() {
    for (capture_text, version) in [(CHROMIUM_V1, Version::V1), (CHROMIUM_V2, Version::V2)] {
        let c = capture(capture_text);
        let (first, second) = (datagram(&c, 'A', 1), datagram(&c, 'A', 2));
        assert_eq!(first.len(), 1250);
        let p = packet::packets(first).next().unwrap().unwrap();
        assert_eq!((p.version, p.packet_type), (version, PacketType::Initial));

        let mut r = Reader::new(Limits::default());
        assert_eq!(r.feed(first), Progress::NeedMore, "{version:?}");
        assert_eq!(r.feed(second), Progress::Sni(CHROMIUM_NAME.into()), "{version:?}");
        // In the other order too.
        assert_eq!(client_hello_sni(&[second, first]), Ok(Some(CHROMIUM_NAME.into())));
        assert_eq!(client_hello_sni(&[first]), Err(QuicError::Incomplete));
    }
}

#[test]
fn chromium_retransmissions_recut_the_client_hello_and_are_read_alone_too() {
    for capture_text in [CHROMIUM_V1, CHROMIUM_V2] {
        let c = capture(capture_text);
        // Packets 4, 6 and 8 carry the ClientHello again, cut differently.
        let resent = [datagram(&c, 'A', 4), datagram(&c, 'A', 6), datagram(&c, 'A', 8)];
        assert_eq!(client_hello_sni(&resent), Ok(Some(CHROMIUM_NAME.into())));
        // After the name is read, every later Initial repeats it, the give-up (packet 9:
        // CONNECTION_CLOSE) included; alone, the give-up is a connection closed unread.
        let mut r = Reader::new(Limits::default());
        for (conn, pn, d) in c.iter().filter(|(k, _, _)| *k == 'A') {
            let expect = if *pn == 1 { Progress::NeedMore } else { Progress::Sni(CHROMIUM_NAME.into()) };
            assert_eq!(r.feed(d), expect, "{conn} {pn}");
        }
        assert_eq!(r.stats().sni, 1);
        assert_eq!(client_hello_sni(&[datagram(&c, 'A', 9)]), Err(QuicError::ClosedByClient));
    }
}

#[test]
fn two_chromium_connections_interleaved_are_read_apart() {
    let c = capture(CHROMIUM_V1);
    let mut r = Reader::new(Limits::default());
    assert_eq!(r.feed(datagram(&c, 'A', 1)), Progress::NeedMore);
    assert_eq!(r.feed(datagram(&c, 'B', 1)), Progress::NeedMore);
    assert_eq!(r.feed(datagram(&c, 'B', 2)), Progress::Sni(CHROMIUM_NAME.into()));
    assert_eq!(r.feed(datagram(&c, 'A', 2)), Progress::Sni(CHROMIUM_NAME.into()));
    assert_eq!(r.stats().connections, 2);
}

#[test]
fn chromium_initials_truncated_or_corrupted_anywhere_never_panic() {
    let c = capture(CHROMIUM_V1);
    let d = datagram(&c, 'A', 1);
    let mut r = Reader::new(Limits::default());
    for len in 0..d.len() {
        assert_eq!(r.feed(&d[..len]), Progress::NotQuic, "{len}");
    }
    // Flipping any one byte: the header no longer parses, or the packet no longer opens.
    for i in 0..d.len() {
        let mut bad = d.to_vec();
        bad[i] ^= 0x01;
        assert_eq!(r.feed(&bad), Progress::NotQuic, "byte {i}");
    }
    assert_eq!(r.stats().connections, 0);
}
