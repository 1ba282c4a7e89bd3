//! A byte-level frame builder for table tests: Ethernet, VLAN tags, IPv4 with options and
//! fragments, IPv6 with extension headers, TCP and UDP, with correct checksums. Hand-written
//! rather than a library so tests can make every shape the parser must handle, including broken
//! ones.

use std::net::IpAddr;

pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const ROUTER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

#[derive(Clone, Debug)]
pub enum L4 {
    Tcp { sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, options: Vec<u8>, payload: Vec<u8> },
    Udp { sport: u16, dport: u16, payload: Vec<u8> },
    /// Any other protocol number with raw bytes.
    Raw { proto: u8, bytes: Vec<u8> },
}

#[derive(Clone, Debug)]
pub struct Ext {
    pub kind: u8,
    /// Header body after next-header and length bytes (for fragment headers: after next-header
    /// and reserved byte).
    pub body: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Frame {
    /// (TPID, TCI) pairs, outermost first.
    pub vlans: Vec<(u16, u16)>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ipv4_options: Vec<u8>,
    /// IPv4 flags+fragment offset field (host order), e.g. 0x2000 = MF, 0x0010 = offset 16*8.
    pub ipv4_frag: u16,
    pub ipv6_ext: Vec<Ext>,
    pub l4: L4,
}

pub fn tcp(src: &str, dst: &str, dport: u16, flags: u8) -> Frame {
    Frame::new(src, dst, L4::Tcp { sport: 40000, dport, seq: 1000, ack: if flags & TCP_ACK != 0 { 5000 } else { 0 }, flags, options: vec![], payload: vec![] })
}

pub fn udp(src: &str, dst: &str, dport: u16, payload: &[u8]) -> Frame {
    Frame::new(src, dst, L4::Udp { sport: 40001, dport, payload: payload.to_vec() })
}

impl Frame {
    pub fn new(src: &str, dst: &str, l4: L4) -> Frame {
        Frame {
            vlans: vec![],
            src: src.parse().expect("src address"),
            dst: dst.parse().expect("dst address"),
            ipv4_options: vec![],
            ipv4_frag: 0,
            ipv6_ext: vec![],
            l4,
        }
    }

    pub fn vlan(mut self, tpid: u16, vid: u16) -> Frame {
        self.vlans.push((tpid, vid));
        self
    }

    pub fn ipv4_options(mut self, opts: &[u8]) -> Frame {
        assert!(opts.len() % 4 == 0 && opts.len() <= 40);
        self.ipv4_options = opts.to_vec();
        self
    }

    pub fn ipv4_frag(mut self, field: u16) -> Frame {
        self.ipv4_frag = field;
        self
    }

    pub fn ext(mut self, kind: u8, body: &[u8]) -> Frame {
        self.ipv6_ext.push(Ext { kind, body: body.to_vec() });
        self
    }

    /// A TCP SYN with the options a real client sends (MSS, SACK-permitted, timestamps, wscale).
    pub fn with_syn_options(mut self) -> Frame {
        if let L4::Tcp { options, .. } = &mut self.l4 {
            *options = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7];
        }
        self
    }

    pub fn payload(mut self, data: &[u8]) -> Frame {
        match &mut self.l4 {
            L4::Tcp { payload, .. } | L4::Udp { payload, .. } => *payload = data.to_vec(),
            L4::Raw { bytes, .. } => *bytes = data.to_vec(),
        }
        self
    }

    fn proto(&self) -> u8 {
        match self.l4 {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Raw { proto, .. } => proto,
        }
    }

    fn l4_bytes(&self) -> Vec<u8> {
        let mut b = match &self.l4 {
            L4::Tcp { sport, dport, seq, ack, flags, options, payload } => {
                assert!(options.len() % 4 == 0);
                let mut h = Vec::new();
                h.extend(sport.to_be_bytes());
                h.extend(dport.to_be_bytes());
                h.extend(seq.to_be_bytes());
                h.extend(ack.to_be_bytes());
                h.push((((20 + options.len()) / 4) as u8) << 4);
                h.push(*flags);
                h.extend(64240u16.to_be_bytes());
                h.extend([0, 0, 0, 0]);
                h.extend(options);
                h.extend(payload);
                h
            }
            L4::Udp { sport, dport, payload } => {
                let mut h = Vec::new();
                h.extend(sport.to_be_bytes());
                h.extend(dport.to_be_bytes());
                h.extend(((8 + payload.len()) as u16).to_be_bytes());
                h.extend([0, 0]);
                h.extend(payload);
                h
            }
            L4::Raw { bytes, .. } => bytes.clone(),
        };
        let csum_at = match self.l4 {
            L4::Tcp { .. } => Some(16),
            L4::Udp { .. } => Some(6),
            L4::Raw { .. } => None,
        };
        if let Some(at) = csum_at {
            let c = l4_checksum(self.src, self.dst, self.proto(), &b);
            let c = if c == 0 && self.proto() == 17 { 0xffff } else { c };
            b[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        b
    }

    pub fn build(&self) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(ROUTER_MAC);
        f.extend(CLIENT_MAC);
        for (tpid, tci) in &self.vlans {
            f.extend(tpid.to_be_bytes());
            f.extend(tci.to_be_bytes());
        }
        let l4 = self.l4_bytes();
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend(0x0800u16.to_be_bytes());
                let ihl = 20 + self.ipv4_options.len();
                let mut ip = vec![0x40 | (ihl / 4) as u8, 0];
                ip.extend(((ihl + l4.len()) as u16).to_be_bytes());
                ip.extend(0x1234u16.to_be_bytes());
                ip.extend(self.ipv4_frag.to_be_bytes());
                ip.push(64);
                ip.push(self.proto());
                ip.extend([0, 0]);
                ip.extend(s.octets());
                ip.extend(d.octets());
                ip.extend(&self.ipv4_options);
                let c = checksum(&ip, 0);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend(ip);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend(0x86DDu16.to_be_bytes());
                let mut ext = Vec::new();
                let kinds: Vec<u8> = self.ipv6_ext.iter().map(|e| e.kind).chain([self.proto()]).collect();
                for (i, e) in self.ipv6_ext.iter().enumerate() {
                    let next = kinds[i + 1];
                    if e.kind == 44 {
                        ext.push(next);
                        ext.push(0);
                        ext.extend(&e.body);
                        assert_eq!(e.body.len(), 6, "fragment header body is 6 bytes");
                    } else if e.kind == 51 {
                        let total = 2 + e.body.len();
                        assert!(total % 4 == 0 && total >= 12);
                        ext.push(next);
                        ext.push((total / 4 - 2) as u8);
                        ext.extend(&e.body);
                    } else {
                        let total = 2 + e.body.len();
                        assert!(total % 8 == 0, "extension header must be a multiple of 8 bytes");
                        ext.push(next);
                        ext.push((total / 8 - 1) as u8);
                        ext.extend(&e.body);
                    }
                }
                let mut ip = vec![0x60, 0, 0, 0];
                ip.extend(((ext.len() + l4.len()) as u16).to_be_bytes());
                ip.push(kinds[0]);
                ip.push(64);
                ip.extend(s.octets());
                ip.extend(d.octets());
                f.extend(ip);
                f.extend(ext);
            }
            _ => panic!("src and dst must be the same family"),
        }
        f.extend(l4);
        f
    }
}

pub fn checksum(data: &[u8], initial: u32) -> u16 {
    let mut sum = initial as u64;
    for c in data.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], 0]) };
        sum += w as u64;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn l4_checksum(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> u16 {
    let mut pseudo = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend([0, proto]);
            pseudo.extend((l4.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend((l4.len() as u32).to_be_bytes());
            pseudo.extend([0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    pseudo.extend(l4);
    checksum(&pseudo, 0)
}
