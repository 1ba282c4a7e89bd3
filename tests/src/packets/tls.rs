//! A TLS ClientHello builder and a splitter into TCP segments, for the SNI table tests.

use super::frames::{Frame, L4, TCP_ACK, TCP_PSH};

/// Options for a synthetic ClientHello shaped like a 2026 browser's: many extensions, a large
/// post-quantum key share, and the server_name extension at a chosen position.
pub struct Hello<'a> {
    pub sni: Option<&'a str>,
    /// Extensions placed before server_name.
    pub before: usize,
    /// Size of the key_share extension's data (X25519MLKEM768 is 1216 bytes + X25519 32).
    pub key_share: usize,
}

impl Default for Hello<'_> {
    fn default() -> Self {
        Hello { sni: Some("blocked.example"), before: 0, key_share: 32 }
    }
}

fn ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend(ty.to_be_bytes());
    out.extend((data.len() as u16).to_be_bytes());
    out.extend(data);
}

/// The handshake message (type 1, length, body), without any record header.
pub fn client_hello(h: &Hello) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([0x5a; 32]); // random
    body.push(32);
    body.extend([0x11; 32]); // legacy session id
    let suites: Vec<u8> = [0x1301u16, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8]
        .iter()
        .flat_map(|s| s.to_be_bytes())
        .collect();
    body.extend((suites.len() as u16).to_be_bytes());
    body.extend(suites);
    body.extend([1, 0]); // compression: null
    let mut exts = Vec::new();
    let fillers: [(u16, Vec<u8>); 8] = [
        (0x0017, vec![]),                          // extended_master_secret
        (0xff01, vec![0]),                         // renegotiation_info
        (0x000a, vec![0, 6, 0x11, 0xec, 0, 0x1d, 0, 0x17]), // supported_groups
        (0x000b, vec![1, 0]),                      // ec_point_formats
        (0x0023, vec![]),                          // session_ticket
        (0x0010, vec![0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1']), // ALPN
        (0x000d, vec![0, 4, 4, 3, 8, 4]),           // signature_algorithms
        (0x002b, vec![4, 3, 4, 3, 3]),             // supported_versions
    ];
    for (ty, data) in fillers.iter().take(h.before) {
        ext(&mut exts, *ty, data);
    }
    if let Some(sni) = h.sni {
        let mut d = Vec::new();
        d.extend(((sni.len() + 3) as u16).to_be_bytes());
        d.push(0);
        d.extend((sni.len() as u16).to_be_bytes());
        d.extend(sni.as_bytes());
        ext(&mut exts, 0x0000, &d);
    }
    for (ty, data) in fillers.iter().skip(h.before) {
        ext(&mut exts, *ty, data);
    }
    let mut ks = Vec::new();
    ks.extend(((h.key_share + 4) as u16).to_be_bytes());
    ks.extend(0x11ecu16.to_be_bytes());
    ks.extend((h.key_share as u16).to_be_bytes());
    ks.extend(std::iter::repeat_n(0x42u8, h.key_share));
    ext(&mut exts, 0x0033, &ks);
    ext(&mut exts, 0x0015, &[0; 40]); // padding
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut msg = vec![1];
    msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    msg
}

/// A ClientHello message with a server_name extension for `sni` appended after its last
/// extension (after the key share, as browsers that shuffle extensions sometimes place it).
pub fn with_name_last(msg: &[u8], sni: &str) -> Vec<u8> {
    let mut at = 4 + 2 + 32;
    at += 1 + msg[at] as usize;
    at += 2 + u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
    at += 1 + msg[at] as usize;
    let mut ext = vec![0, 0];
    ext.extend(((sni.len() + 5) as u16).to_be_bytes());
    ext.extend(((sni.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend((sni.len() as u16).to_be_bytes());
    ext.extend(sni.as_bytes());
    let mut out = msg.to_vec();
    let exts = u16::from_be_bytes([out[at], out[at + 1]]) as usize + ext.len();
    out[at..at + 2].copy_from_slice(&(exts as u16).to_be_bytes());
    out.extend(ext);
    let body = (out.len() - 4) as u32;
    out[1..4].copy_from_slice(&body.to_be_bytes()[1..]);
    out
}

/// The handshake message `msg` with `n` more extensions (unknown types, 2 bytes of data each)
/// at the start of its extensions, before all the others.
pub fn with_leading_extensions(msg: &[u8], n: usize) -> Vec<u8> {
    let mut at = 4 + 2 + 32;
    at += 1 + msg[at] as usize;
    at += 2 + u16::from_be_bytes([msg[at], msg[at + 1]]) as usize;
    at += 1 + msg[at] as usize;
    let mut lead = Vec::new();
    for i in 0..n {
        ext(&mut lead, 0xfe00 + i as u16, &[0xab, i as u8]);
    }
    let mut out = msg[..at + 2].to_vec();
    let exts = u16::from_be_bytes([out[at], out[at + 1]]) as usize + lead.len();
    out[at..at + 2].copy_from_slice(&(exts as u16).to_be_bytes());
    out.extend(lead);
    out.extend(&msg[at + 2..]);
    let body = (out.len() - 4) as u32;
    out[1..4].copy_from_slice(&body.to_be_bytes()[1..]);
    out
}

/// Wraps handshake bytes in TLS records of at most `max` payload bytes each.
pub fn records(handshake: &[u8], max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in handshake.chunks(max) {
        out.extend([0x16, 0x03, 0x01]);
        out.extend((chunk.len() as u16).to_be_bytes());
        out.extend(chunk);
    }
    out
}

/// One record holding the whole ClientHello, as clients send it.
pub fn stream(h: &Hello) -> Vec<u8> {
    records(&client_hello(h), 16384)
}

/// Where the server name's bytes start in the stream (for tests that split around it).
pub fn sni_offset(stream: &[u8], sni: &str) -> usize {
    stream.windows(sni.len()).position(|w| w == sni.as_bytes()).expect("sni in stream")
}

/// A client-to-server data segment of flow `sport` carrying `data` at stream offset `at`.
pub fn segment(src: &str, dst: &str, sport: u16, at: usize, data: &[u8]) -> Frame {
    Frame::new(
        src,
        dst,
        L4::Tcp {
            sport,
            dport: 443,
            seq: 1_000_000u32.wrapping_add(at as u32),
            ack: 77_000,
            flags: TCP_ACK | TCP_PSH,
            options: vec![],
            payload: data.to_vec(),
        },
    )
}
