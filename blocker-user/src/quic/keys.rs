//! Initial packet protection keys (RFC 9001 §5.2; QUIC version 2: RFC 9369 §3.3).
//!
//! Initial packets are encrypted, but with keys anyone can derive: from a salt fixed per version
//! and the Destination Connection ID of the client's first Initial.
//!
//! ```text
//! initial_secret        = HKDF-Extract(initial_salt, client_dcid)
//! client_initial_secret = HKDF-Expand-Label(initial_secret, "client in", "", 32)
//! key = HKDF-Expand-Label(client_initial_secret, "quic key", "", 16)    v2: "quicv2 key"
//! iv  = HKDF-Expand-Label(client_initial_secret, "quic iv",  "", 12)    v2: "quicv2 iv"
//! hp  = HKDF-Expand-Label(client_initial_secret, "quic hp",  "", 16)    v2: "quicv2 hp"
//! ```
//!
//! HKDF-Expand-Label is TLS 1.3's (RFC 8446 §7.1) with SHA-256, the hash of the Initial cipher
//! suite, TLS_AES_128_GCM_SHA256.

use hkdf::Hkdf;
use sha2::Sha256;

use super::packet::Version;

/// initial_salt of QUIC version 1 (RFC 9001 §5.2).
pub const INITIAL_SALT_V1: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f,
    0x0a,
];
/// initial_salt of QUIC version 2 (RFC 9369 §3.3.1).
pub const INITIAL_SALT_V2: [u8; 20] = [
    0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e,
    0xd9,
];

/// Which end's Initial keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// The AEAD key, IV and header protection key that protect one end's Initial packets.
#[derive(Clone, PartialEq, Eq)]
pub struct InitialKeys {
    pub version: Version,
    /// AEAD_AES_128_GCM key.
    pub key: [u8; 16],
    /// Nonce base: the packet number is XORed into its last bytes.
    pub iv: [u8; 12],
    /// AES-128 key of header protection.
    pub hp: [u8; 16],
}

impl std::fmt::Debug for InitialKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Public keys (anyone with the DCID derives them), but noise in logs.
        f.debug_struct("InitialKeys").field("version", &self.version).finish_non_exhaustive()
    }
}

impl Version {
    pub fn initial_salt(self) -> &'static [u8; 20] {
        match self {
            Version::V1 => &INITIAL_SALT_V1,
            Version::V2 => &INITIAL_SALT_V2,
        }
    }

    /// The labels of the key, IV and header protection key.
    fn key_labels(self) -> [&'static [u8]; 3] {
        match self {
            Version::V1 => [b"quic key", b"quic iv", b"quic hp"],
            Version::V2 => [b"quicv2 key", b"quicv2 iv", b"quicv2 hp"],
        }
    }
}

/// The keys of the client's Initial packets of a connection whose first Initial had `dcid`.
pub fn client_initial_keys(version: Version, dcid: &[u8]) -> InitialKeys {
    initial_keys(version, dcid, Side::Client)
}

/// The Initial keys of one `side` of a connection whose client's first Initial had `dcid`.
pub fn initial_keys(version: Version, dcid: &[u8], side: Side) -> InitialKeys {
    let secret = initial_side_secret(version, dcid, side);
    let hk = Hkdf::<Sha256>::from_prk(&secret).expect("a SHA-256 output is a valid PRK");
    let [key_label, iv_label, hp_label] = version.key_labels();
    let mut keys = InitialKeys { version, key: [0; 16], iv: [0; 12], hp: [0; 16] };
    expand_label(&hk, key_label, &mut keys.key);
    expand_label(&hk, iv_label, &mut keys.iv);
    expand_label(&hk, hp_label, &mut keys.hp);
    keys
}

/// initial_secret = HKDF-Extract(initial_salt, dcid).
pub(crate) fn initial_secret(version: Version, dcid: &[u8]) -> [u8; 32] {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(version.initial_salt()), dcid);
    let mut out = [0; 32];
    out.copy_from_slice(&prk);
    out
}

/// client_initial_secret or server_initial_secret.
pub(crate) fn initial_side_secret(version: Version, dcid: &[u8], side: Side) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::from_prk(&initial_secret(version, dcid)).expect("a SHA-256 output is a valid PRK");
    let label: &[u8] = match side {
        Side::Client => b"client in",
        Side::Server => b"server in",
    };
    let mut out = [0; 32];
    expand_label(&hk, label, &mut out);
    out
}

/// HKDF-Expand-Label(secret, label, "", out.len()) (RFC 8446 §7.1): HKDF-Expand with the info
///
/// ```text
/// struct { uint16 length; opaque label<7..255> = "tls13 " + label; opaque context<0..255> = ""; }
/// ```
fn expand_label(hk: &Hkdf<Sha256>, label: &[u8], out: &mut [u8]) {
    let info = hkdf_label(label, out.len());
    hk.expand(&info, out).expect("at most 32 bytes, far below 255 * 32");
}

fn hkdf_label(label: &[u8], len: usize) -> Vec<u8> {
    const PREFIX: &[u8] = b"tls13 ";
    let mut info = Vec::with_capacity(2 + 1 + PREFIX.len() + label.len() + 1);
    info.extend_from_slice(&(len as u16).to_be_bytes());
    info.push((PREFIX.len() + label.len()) as u8);
    info.extend_from_slice(PREFIX);
    info.extend_from_slice(label);
    info.push(0); // empty context
    info
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quic::wire::hex;

    const RFC_DCID: &str = "8394c8f03e515708";

    #[test]
    fn hkdf_labels_are_the_ones_rfc_9001_a_1_and_rfc_9369_a_1_list() {
        assert_eq!(hkdf_label(b"client in", 32), hex("00200f746c73313320636c69656e7420696e00"));
        assert_eq!(hkdf_label(b"server in", 32), hex("00200f746c7331332073657276657220696e00"));
        assert_eq!(hkdf_label(b"quic key", 16), hex("00100e746c7331332071756963206b657900"));
        assert_eq!(hkdf_label(b"quic iv", 12), hex("000c0d746c733133207175696320697600"));
        assert_eq!(hkdf_label(b"quic hp", 16), hex("00100d746c733133207175696320687000"));
        assert_eq!(hkdf_label(b"quicv2 key", 16), hex("001010746c73313320717569637632206b657900"));
        assert_eq!(hkdf_label(b"quicv2 iv", 12), hex("000c0f746c7331332071756963763220697600"));
        assert_eq!(hkdf_label(b"quicv2 hp", 16), hex("00100f746c7331332071756963763220687000"));
    }

    #[test]
    fn version_1_keys_are_those_of_rfc_9001_appendix_a_1() {
        let dcid = hex(RFC_DCID);
        assert_eq!(
            initial_secret(Version::V1, &dcid).to_vec(),
            hex("7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44")
        );
        assert_eq!(
            initial_side_secret(Version::V1, &dcid, Side::Client).to_vec(),
            hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea")
        );
        let client = client_initial_keys(Version::V1, &dcid);
        assert_eq!(client.key.to_vec(), hex("1f369613dd76d5467730efcbe3b1a22d"));
        assert_eq!(client.iv.to_vec(), hex("fa044b2f42a3fd3b46fb255c"));
        assert_eq!(client.hp.to_vec(), hex("9f50449e04a0e810283a1e9933adedd2"));

        assert_eq!(
            initial_side_secret(Version::V1, &dcid, Side::Server).to_vec(),
            hex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b")
        );
        let server = initial_keys(Version::V1, &dcid, Side::Server);
        assert_eq!(server.key.to_vec(), hex("cf3a5331653c364c88f0f379b6067e37"));
        assert_eq!(server.iv.to_vec(), hex("0ac1493ca1905853b0bba03e"));
        assert_eq!(server.hp.to_vec(), hex("c206b8d9b9f0f37644430b490eeaa314"));
    }

    #[test]
    fn version_2_keys_are_those_of_rfc_9369_appendix_a_1() {
        let dcid = hex(RFC_DCID);
        assert_eq!(
            initial_secret(Version::V2, &dcid).to_vec(),
            hex("2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba")
        );
        assert_eq!(
            initial_side_secret(Version::V2, &dcid, Side::Client).to_vec(),
            hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b")
        );
        let client = client_initial_keys(Version::V2, &dcid);
        assert_eq!(client.key.to_vec(), hex("8b1a0bc121284290a29e0971b5cd045d"));
        assert_eq!(client.iv.to_vec(), hex("91f73e2351d8fa91660e909f"));
        assert_eq!(client.hp.to_vec(), hex("45b95e15235d6f45a6b19cbcb0294ba9"));

        assert_eq!(
            initial_side_secret(Version::V2, &dcid, Side::Server).to_vec(),
            hex("0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1")
        );
        let server = initial_keys(Version::V2, &dcid, Side::Server);
        assert_eq!(server.key.to_vec(), hex("82db637861d55e1d011f19ea71d5d2a7"));
        assert_eq!(server.iv.to_vec(), hex("dd13c276499c0249d3310652"));
        assert_eq!(server.hp.to_vec(), hex("edf6d05c83121201b436e16877593c3a"));
    }

    #[test]
    fn any_connection_id_length_derives_keys_and_different_ids_derive_different_keys() {
        let empty = client_initial_keys(Version::V1, &[]);
        let twenty = client_initial_keys(Version::V1, &[0xab; 20]);
        assert_ne!(empty, twenty);
        assert_ne!(client_initial_keys(Version::V1, &[0xab; 20]), client_initial_keys(Version::V2, &[0xab; 20]));
    }
}
