//! Reading Ethernet frames from pcap and pcapng captures.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
};

use pcap_file::{
    DataLink,
    pcap::PcapReader,
    pcapng::{Block, PcapNgReader},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub data: Vec<u8>,
    /// Length on the wire; larger than `data.len()` when the capture truncated the frame.
    pub original_len: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot read: {source}", path = path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a pcap or pcapng capture: {detail}", path = path.display())]
    Format { path: PathBuf, detail: String },
    #[error("{path}: frame {frame} is from a {link:?} link; only Ethernet captures can be replayed", path = path.display())]
    LinkType { path: PathBuf, frame: usize, link: DataLink },
}

const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads every frame of a capture (pcap or pcapng, detected by content).
pub fn read_frames(path: &Path) -> Result<Vec<Frame>, CaptureError> {
    let io = |source| CaptureError::Io { path: path.to_path_buf(), source };
    let fmt = |e: pcap_file::PcapError| CaptureError::Format { path: path.to_path_buf(), detail: e.to_string() };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).map_err(io)?;
    let file = File::open(path).map_err(io)?;
    let reader = BufReader::new(file);
    let mut frames = Vec::new();
    if magic == PCAPNG_MAGIC {
        let mut r = PcapNgReader::new(reader).map_err(fmt)?;
        let mut links: Vec<DataLink> = Vec::new();
        while let Some(block) = r.next_block() {
            match block.map_err(fmt)? {
                Block::SectionHeader(_) => links.clear(),
                Block::InterfaceDescription(idb) => links.push(idb.linktype),
                Block::EnhancedPacket(epb) => {
                    let link = links.get(epb.interface_id as usize).copied().unwrap_or(DataLink::ETHERNET);
                    check_link(path, frames.len() + 1, link)?;
                    frames.push(Frame { data: epb.data.into_owned(), original_len: epb.original_len });
                }
                Block::SimplePacket(spb) => {
                    let link = links.first().copied().unwrap_or(DataLink::ETHERNET);
                    check_link(path, frames.len() + 1, link)?;
                    frames.push(Frame { data: spb.data.into_owned(), original_len: spb.original_len });
                }
                Block::Packet(pb) => {
                    let link = links.get(pb.interface_id as usize).copied().unwrap_or(DataLink::ETHERNET);
                    check_link(path, frames.len() + 1, link)?;
                    frames.push(Frame { data: pb.data.into_owned(), original_len: pb.original_len });
                }
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(reader).map_err(fmt)?;
        let link = r.header().datalink;
        while let Some(pkt) = r.next_packet() {
            let pkt = pkt.map_err(fmt)?;
            check_link(path, frames.len() + 1, link)?;
            frames.push(Frame { data: pkt.data.into_owned(), original_len: pkt.orig_len });
        }
    }
    Ok(frames)
}

fn check_link(path: &Path, frame: usize, link: DataLink) -> Result<(), CaptureError> {
    if link == DataLink::ETHERNET {
        Ok(())
    } else {
        Err(CaptureError::LinkType { path: path.to_path_buf(), frame, link })
    }
}

/// Writes frames as a classic pcap (microsecond timestamps, Ethernet link type).
pub fn write_pcap(path: &Path, frames: &[Vec<u8>]) -> Result<(), CaptureError> {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let io = |source| CaptureError::Io { path: path.to_path_buf(), source };
    let fmt = |e: pcap_file::PcapError| CaptureError::Format { path: path.to_path_buf(), detail: e.to_string() };
    let file = File::create(path).map_err(io)?;
    let header = PcapHeader { datalink: DataLink::ETHERNET, ..Default::default() };
    let mut w = PcapWriter::with_header(file, header).map_err(fmt)?;
    for (i, f) in frames.iter().enumerate() {
        let ts = std::time::Duration::from_millis(i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f)).map_err(fmt)?;
    }
    Ok(())
}
