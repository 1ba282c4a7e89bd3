//! Attaching the program to an interface: native (driver) XDP when the driver supports it,
//! generic (skb) XDP otherwise, with a warning, since generic mode runs after the kernel has
//! allocated an skb and costs far more per packet.

use aya::programs::XdpMode;

use super::{Datapath, DatapathError, PROGRAM};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AttachMode {
    Native,
    Generic,
}

impl AttachMode {
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub iface: String,
    pub mode: AttachMode,
    /// Why native mode was not used, when it was not.
    pub native_error: Option<String>,
}

impl Datapath {
    /// Attaches to `iface`. With `force_generic` skips the native attempt.
    pub fn attach(&mut self, iface: &str, force_generic: bool) -> Result<Attachment, DatapathError> {
        let prog = self.program_mut(PROGRAM)?;
        let mut native_error = None;
        if !force_generic {
            match prog.attach(iface, XdpMode::Driver) {
                Ok(id) => {
                    self.last_link = Some(id);
                    return Ok(Attachment { iface: iface.to_string(), mode: AttachMode::Native, native_error });
                }
                Err(aya::programs::ProgramError::UnknownInterface { name }) => {
                    return Err(DatapathError::Attach {
                        iface: iface.to_string(),
                        source: aya::programs::ProgramError::UnknownInterface { name },
                    });
                }
                Err(e) => {
                    log::warn!("{iface}: native XDP not available ({e}); falling back to generic mode, which costs more per packet");
                    native_error = Some(e.to_string());
                }
            }
        }
        let id = prog.attach(iface, XdpMode::Skb).map_err(|source| DatapathError::Attach { iface: iface.to_string(), source })?;
        self.last_link = Some(id);
        Ok(Attachment { iface: iface.to_string(), mode: AttachMode::Generic, native_error })
    }
}
