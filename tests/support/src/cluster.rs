//! The private PostgreSQL cluster that test databases live on when no
//! server is named. It lives on a thread of its own and is stopped when
//! the last [`TestDb`](crate::TestDb) is dropped: statics are never dropped,
//! so a cluster kept in one would outlive the test process.

use std::{
    sync::{Mutex, PoisonError},
    thread::JoinHandle,
};

use tokio::sync::{mpsc, oneshot};

use crate::DATABASE_URL_ENV;

/// The process-wide private cluster and how many [`TestDb`](crate::TestDb)s use it.
struct Shared {
    users: usize,
    cluster: Option<ClusterThread>,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    users: 0,
    cluster: None,
});

/// The thread that owns the private cluster: it starts the cluster, answers
/// URL requests, and stops the cluster on [`ClusterCommand::Stop`].
///
/// A thread with its own runtime, because the cluster must outlive every
/// test's runtime (each `#[tokio::test]` has its own) yet be stopped from one.
struct ClusterThread {
    commands: mpsc::UnboundedSender<ClusterCommand>,
    thread: JoinHandle<()>,
}

pub(crate) enum ClusterCommand {
    /// The URL of a database of the cluster, or why the cluster is unusable.
    Url(String, oneshot::Sender<Result<String, String>>),
    Stop,
}

impl ClusterThread {
    fn start() -> Self {
        let (commands, mut inbox) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("e2e-pg-cluster".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("building the cluster thread's runtime");
                runtime.block_on(async {
                    let cluster = match sluice::pgcluster::PgCluster::start().await {
                        Ok(cluster) => cluster,
                        Err(e) => {
                            let error = format!("starting PostgreSQL: {e}");
                            return answer_errors(&mut inbox, &error).await;
                        }
                    };
                    while let Some(command) = inbox.recv().await {
                        match command {
                            ClusterCommand::Url(database, reply) => {
                                let _ = reply.send(Ok(cluster.url(&database)));
                            }
                            ClusterCommand::Stop => break,
                        }
                    }
                    // On failure its Drop still stops it, immediately.
                    if let Err(e) = cluster.stop().await {
                        eprintln!("e2e: stopping the private PostgreSQL: {e}");
                    }
                });
            })
            .expect("spawning the cluster thread");
        Self { commands, thread }
    }
}

/// Fails every request of a cluster that could not start.
async fn answer_errors(inbox: &mut mpsc::UnboundedReceiver<ClusterCommand>, error: &str) {
    while let Some(command) = inbox.recv().await {
        match command {
            ClusterCommand::Url(_, reply) => {
                let _ = reply.send(Err(error.to_owned()));
            }
            ClusterCommand::Stop => break,
        }
    }
}

/// The URL of `database` on the cluster; panics when the cluster is unusable.
pub(crate) async fn cluster_url(
    cluster: &mpsc::UnboundedSender<ClusterCommand>,
    database: &str,
) -> String {
    let (reply, answer) = oneshot::channel();
    cluster
        .send(ClusterCommand::Url(database.to_owned(), reply))
        .expect("the cluster thread is gone");
    match answer.await {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => panic!("{e} (set {DATABASE_URL_ENV} to use an existing server)"),
        Err(_) => panic!("the cluster thread died"),
    }
}

/// One user of the private cluster (or of an external server); the last one
/// to go stops the cluster.
pub(crate) struct ClusterLease;

impl ClusterLease {
    pub(crate) fn external() -> Self {
        lock_shared().users += 1;
        Self
    }

    /// Also starts the cluster if nobody uses it.
    pub(crate) fn private() -> (Self, mpsc::UnboundedSender<ClusterCommand>) {
        let mut shared = lock_shared();
        shared.users += 1;
        let commands = shared
            .cluster
            .get_or_insert_with(ClusterThread::start)
            .commands
            .clone();
        (Self, commands)
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        let stopping = {
            let mut shared = lock_shared();
            shared.users -= 1;
            if shared.users == 0 {
                shared.cluster.take()
            } else {
                None
            }
        };
        // Outside the lock: a test starting meanwhile gets a new cluster
        // instead of waiting for this one to stop.
        if let Some(cluster) = stopping {
            let _ = cluster.commands.send(ClusterCommand::Stop);
            if cluster.thread.join().is_err() {
                eprintln!("e2e: the cluster thread panicked while stopping");
            }
        }
    }
}

fn lock_shared() -> std::sync::MutexGuard<'static, Shared> {
    // A test that panicked while holding the lock left the counts intact.
    SHARED.lock().unwrap_or_else(PoisonError::into_inner)
}
