//! Restart policies (`no`, `always`, `unless-stopped`, `on-failure[:N]`) with dockerd's
//! backoff: the first restart waits 100 ms, each further one twice as long (capped at one
//! minute), and the delay starts over once a run lasted 10 seconds. A container stopped by
//! the user is not restarted; `always` and `unless-stopped` containers that are down when the
//! daemon starts are started again (`unless-stopped` only if the user had not stopped them).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::containers::Container;
use crate::record::{Record, Status};
use crate::Engine;

const FIRST_DELAY_MS: u64 = 100;
const MAX_DELAY_MS: u64 = 60_000;
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Whether a container that just exited with `code` should be restarted.
pub fn should_restart(rec: &Record, code: i32) -> bool {
    if rec.manually_stopped || rec.host_config.auto_remove {
        return false;
    }
    let p = &rec.host_config.restart_policy;
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            code != 0
                && (p.maximum_retry_count <= 0
                    || i64::from(rec.restart_count) < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// The next backoff delay given the previous one and how long the last run lasted.
pub fn next_delay_ms(previous_ms: u64, ran: Duration) -> u64 {
    if previous_ms == 0 || ran >= RESET_AFTER {
        FIRST_DELAY_MS
    } else {
        (previous_ms * 2).min(MAX_DELAY_MS)
    }
}

impl Engine {
    /// Called after an exit was recorded: schedules the restart the policy asks for.
    pub(crate) fn schedule_restart(self: &Arc<Self>, c: &Arc<Container>, code: i32) {
        let rec = c.snapshot();
        if !should_restart(&rec, code) {
            return;
        }
        let ran = match (rec.state.started_at, rec.state.finished_at) {
            (Some(s), Some(f)) => (f - s).to_std().unwrap_or_default(),
            _ => Duration::ZERO,
        };
        let delay = next_delay_ms(rec.restart_delay_ms, ran);
        let _ = c.update(|r| {
            r.state.status = Status::Restarting;
            r.restart_delay_ms = delay;
        });
        let me = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let rec = c.snapshot();
            if c.life.borrow().removed
                || rec.state.status != Status::Restarting
                || rec.manually_stopped
            {
                return;
            }
            let _ = c.update(|r| {
                r.state.status = Status::Exited;
                r.restart_count += 1;
            });
            if let Err(e) = me.start_for_policy(&rec.id).await {
                tracing::warn!(id = %rec.id, "restart policy: start failed: {e}");
                // A failed start counts as an exit with the recorded code: try again later.
                let code = c.snapshot().state.exit_code;
                let _ = c.update(|r| r.state.finished_at = Some(Utc::now()));
                me.schedule_restart(&c, code);
            }
        });
    }

    /// At daemon start: containers whose policy wants them up and that are down.
    pub(crate) async fn resume_restart_policies(self: &Arc<Self>) {
        for c in self.all_containers() {
            let rec = c.snapshot();
            let wants = matches!(
                rec.host_config.restart_policy.name.as_str(),
                "always" | "unless-stopped"
            ) && !rec.manually_stopped;
            let down = matches!(rec.state.status, Status::Exited | Status::Restarting);
            if wants && down {
                let _ = c.update(|r| r.state.status = Status::Exited);
                if let Err(e) = self.start_for_policy(&rec.id).await {
                    tracing::warn!(id = %rec.id, "restart policy at daemon start: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_resets() {
        assert_eq!(next_delay_ms(0, Duration::ZERO), 100);
        assert_eq!(next_delay_ms(100, Duration::from_secs(1)), 200);
        assert_eq!(next_delay_ms(40_000, Duration::from_secs(1)), 60_000);
        assert_eq!(next_delay_ms(800, Duration::from_secs(11)), 100);
    }
}
