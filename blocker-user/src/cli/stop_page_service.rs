//! Running the stop-page service beside the data plane, on its own thread and runtime, so the
//! synchronous controller loop stays simple.

use std::{sync::Arc, thread::JoinHandle};

use anyhow::Context;
use blocker_user::stoppage::{self, StopPageConfig};
use tokio::sync::oneshot;

pub struct Service {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// Binds the configured addresses (so a bind error stops `run` at once) and serves.
    pub fn start(config: StopPageConfig) -> anyhow::Result<Service> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the stop-page runtime")?;
        let config = Arc::new(config);
        let listeners = rt.block_on(async { stoppage::bind(&config) }).context("binding the stop-page service")?;
        for l in &listeners {
            if let Ok(a) = l.local_addr() {
                log::info!("stop page: listening on {a}");
            }
        }
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("stop-page".into())
            .spawn(move || {
                let result = rt.block_on(stoppage::serve(config, listeners, async {
                    let _ = rx.await;
                }));
                if let Err(e) = result {
                    log::error!("stop page: {e}");
                }
            })
            .context("starting the stop-page thread")?;
        Ok(Service { stop: Some(tx), thread: Some(thread) })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
