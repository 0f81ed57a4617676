//! The service on Kafka: wiring of intel, pipeline, HTTP server and shutdown.

pub mod admin;
pub mod changelog;
pub mod demo;
pub mod notifications;
pub mod pipeline;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::intel::update::IntelUpdater;
use crate::intel::IntelStore;
use crate::telemetry::metrics as m;
use pipeline::{start_pipeline, PipelineDeps};

/// `wazuh-misp run`: until SIGTERM/SIGINT, then drain, commit and exit.
pub fn run_service(config: Config) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("wazuh-misp-io")
        .build()?;
    let shutdown = Arc::new(AtomicBool::new(false));
    let signal_flag = shutdown.clone();
    runtime.spawn(async move {
        wait_for_signal().await;
        tracing::info!("Shutdown requested; draining.");
        signal_flag.store(true, Ordering::Release);
    });
    let result = run_with(&runtime, config, shutdown);
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The service body, with its shutdown trigger as a parameter (tests set the flag).
pub fn run_with(
    runtime: &tokio::runtime::Runtime,
    config: Config,
    shutdown: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let metrics_handle = crate::server::install_recorder()?;
    m::describe(&config.topics.input);
    let store = Arc::new(IntelStore::default());

    // Intel: persisted snapshot first (ready without MISP), then the configured sources.
    let misp = crate::intel::sync::misp_client(&config)?;
    let intel_task = if config.intel.source == "topic" {
        changelog::spawn_follower(runtime, &config, store.clone(), shutdown.clone())?
    } else {
        let updater = start_updater(runtime, &config, &store, misp.clone(), &shutdown)?;
        Some(runtime.spawn(updater.into_future(|_| {})))
    };

    let push_shutdown = tokio_util::sync::CancellationToken::new();
    let mut push_task = None;
    let sharing = config.sharing.enabled.then(|| {
        let sharing = crate::misp::sharing::IocSharing::new(
            config.sharing.min_rule_level,
            Duration::from_secs(config.sharing.dedup_ttl_secs.max(1)),
        );
        match (&misp, config.sharing.push_to_misp) {
            (Some(client), true) => {
                let options = crate::misp::push::PushOptions::from_config(&config.sharing);
                let (sender, pusher) = crate::misp::push::ioc_pusher(client.clone(), options);
                push_task = Some(runtime.spawn(pusher.run(push_shutdown.clone())));
                Arc::new(sharing.with_pusher(sender))
            }
            _ => Arc::new(sharing),
        }
    });
    let sightings = match (&misp, config.sightings.enabled) {
        (Some(client), true) => {
            let (sender, task) = crate::misp::sightings::sightings(
                client.clone(),
                config.sightings.source.clone(),
                Duration::from_secs(5),
            );
            runtime.spawn(task);
            Some(sender)
        }
        _ => None,
    };
    // One live look-up (cache, breaker) for /v1/lookup and the pipeline's live queries.
    let lookup = misp.clone().map(|client| {
        Arc::new(crate::misp::lookup::LiveLookup::new(
            client,
            crate::misp::lookup::LiveLookupOptions {
                include_non_ids: config.intel.include_non_ids,
                reference_base: config.misp.url.clone(),
                filter: config.misp_filter(),
                ..Default::default()
            },
        ))
    });
    let live_query = match (&lookup, config.misp.live_query.enabled) {
        (Some(lookup), true) => Some(Arc::new(crate::misp::lookup::AlertLiveQuery::new(
            lookup.clone(),
            runtime.handle().clone(),
            &config.misp.live_query,
        ))),
        _ => None,
    };
    let handle = start_pipeline(
        &config,
        PipelineDeps {
            sharing,
            sightings,
            live_query,
            ..PipelineDeps::new(store.clone(), shutdown.clone())
        },
    )?;
    let shared = handle.shared.clone();
    let server_shutdown = shutdown.clone();
    if config.server.enabled {
        let state = crate::server::ServerState {
            metrics: metrics_handle,
            store: store.clone(),
            has_assignment: Arc::new(move || shared.has_assignment.load(Ordering::Acquire)),
            reference_base: config.misp.url.clone(),
            lookup,
            shutting_down: shutdown.clone(),
        };
        runtime.block_on(crate::server::serve(
            &config.server.listen,
            state,
            async move {
                while !server_shutdown.load(Ordering::Acquire) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        ))?;
    }
    tracing::info!(input = %config.topics.input, group = %config.kafka.group_id, workers = config.workers(), exactly_once = config.kafka.exactly_once, "Pipeline running.");
    let result = handle.join();
    shutdown.store(true, Ordering::Release);
    if let Some(task) = push_task {
        // Best effort: the last batch of new IOCs into MISP, bounded in time.
        push_shutdown.cancel();
        let _ =
            runtime.block_on(async { tokio::time::timeout(Duration::from_secs(15), task).await });
    }
    if let Some(task) = intel_task {
        // The updater stops at its next check of the flag (and persists pending changes);
        // a pull in progress is abandoned after a few seconds.
        let abort = task.abort_handle();
        if runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await })
            .is_err()
        {
            abort.abort();
        }
    }
    result.map_err(anyhow::Error::from)
}

/// An [`IntelUpdater`] with its first load done, ready to run on its schedule.
pub struct StartedUpdater {
    updater: IntelUpdater,
    notifications: Option<notifications::Notifications>,
    shutdown: Arc<AtomicBool>,
    /// Why the first full load failed, when it did (a persisted snapshot serves meanwhile).
    pub first_error: Option<String>,
}

impl StartedUpdater {
    /// The updater's loop; `on_change` runs after every swap.
    pub async fn into_future(self, on_change: impl FnMut(&IntelStore)) {
        let StartedUpdater {
            updater,
            notifications,
            shutdown,
            ..
        } = self;
        updater
            .run(notifications.map(|n| n.deltas), shutdown, on_change)
            .await;
    }
}

/// The persisted snapshot, MISP notifications (subscribed before the first pull, so nothing
/// in between is missed), then the first full load. Fails only when nothing could be loaded.
pub fn start_updater(
    runtime: &tokio::runtime::Runtime,
    config: &Config,
    store: &Arc<IntelStore>,
    misp: Option<crate::misp::MispClient>,
    shutdown: &Arc<AtomicBool>,
) -> anyhow::Result<StartedUpdater> {
    crate::intel::sync::load_persisted(config, store);
    let notifications = if config.misp.notifications.enabled {
        let started = notifications::spawn(config, shutdown.clone())?;
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while !started.ready.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(started)
    } else {
        None
    };
    let mut updater = IntelUpdater::new(config.clone(), store.clone(), misp);
    let first_error = match runtime.block_on(updater.full()) {
        Ok(()) => None,
        Err(err) if store.is_loaded() => Some(err.to_string()),
        Err(err) => anyhow::bail!(
            "no indicator set: the first load failed ({err}) and no persisted snapshot exists"
        ),
    };
    Ok(StartedUpdater {
        updater,
        notifications,
        shutdown: shutdown.clone(),
        first_error,
    })
}
