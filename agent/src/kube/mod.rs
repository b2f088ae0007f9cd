//! Workload names from the Kubernetes API: the pods of this node (`spec.nodeName` =
//! `NODE_NAME`, from the downward API), listed then watched, each resolved to its workload
//! through its owner references ([`owners`]). Read-only: get, list and watch on pods, and get
//! on ReplicaSets and Jobs.
//!
//! The API is optional. Outside a cluster (no service account) the task does not start. In a
//! cluster, an API that cannot be reached or RBAC that is denied is counted, shown in /health
//! (`kubernetes` check) and retried with backoff; meanwhile discovery names workloads from
//! the kubelet's pod directories and the pod names. Capture never waits for the API.

pub mod owners;

use agent_core::server::WorkloadKind;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::discovery::{PodMeta, PodSource};
use owners::{Owners, controller, workload_of};

/// Owner lookups kept (ReplicaSets and Jobs); the cache is cleared past it.
const OWNER_CACHE: usize = 4096;
/// Pods kept (a node runs at most a few hundred).
const MAX_PODS: usize = 16_384;
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A watch is re-issued after this many seconds (the API server closes it anyway).
const WATCH_SECS: u32 = 290;

/// `[kubernetes]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeConfig {
    /// Use the API when the agent runs in a cluster (a service account is mounted).
    pub enabled: bool,
    /// This node's name; empty reads the NODE_NAME environment variable.
    pub node_name: String,
}

impl Default for KubeConfig {
    fn default() -> Self {
        KubeConfig {
            enabled: true,
            node_name: String::new(),
        }
    }
}

/// What /health shows about the API.
#[derive(Debug, Default)]
pub struct KubeStatus {
    node: String,
    connected: AtomicBool,
    pods: AtomicU64,
    /// Failed requests (unreachable, timeouts, server errors), denied included.
    errors: AtomicU64,
    /// Requests refused by RBAC (401, 403).
    denied: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A plain copy for /health.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubeSnapshot {
    pub node: String,
    pub connected: bool,
    pub pods: u64,
    pub errors: u64,
    pub denied: u64,
    pub last_error: Option<String>,
}

impl KubeStatus {
    pub fn snapshot(&self) -> KubeSnapshot {
        KubeSnapshot {
            node: self.node.clone(),
            connected: self.connected.load(Relaxed),
            pods: self.pods.load(Relaxed),
            errors: self.errors.load(Relaxed),
            denied: self.denied.load(Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Counts a failed request; `denied` when RBAC refused it.
    pub fn failed(&self, why: String, denied: bool) {
        self.errors.fetch_add(1, Relaxed);
        if denied {
            self.denied.fetch_add(1, Relaxed);
        }
        self.connected.store(false, Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }

    /// `apitap_kubernetes_*` self-metrics.
    pub fn self_metrics(&self) -> Vec<agent_core::export::SelfMetric> {
        use agent_core::export::{MetricKind, SelfMetric};
        let s = self.snapshot();
        let m = |name: &str, help: &str, kind, v: f64| SelfMetric {
            name: name.into(),
            help: help.into(),
            kind,
            labels: Vec::new(),
            value: v,
        };
        vec![
            m(
                "apitap_kubernetes_api_up",
                "1 when the Kubernetes API answered the last request.",
                MetricKind::Gauge,
                f64::from(u8::from(s.connected)),
            ),
            m(
                "apitap_kubernetes_pods",
                "Pods of this node known from the API.",
                MetricKind::Gauge,
                s.pods as f64,
            ),
            m(
                "apitap_kubernetes_errors_total",
                "Kubernetes API requests that failed (unreachable, denied, server errors).",
                MetricKind::Counter,
                s.errors as f64,
            ),
            m(
                "apitap_kubernetes_denied_total",
                "Kubernetes API requests refused by RBAC (401/403).",
                MetricKind::Counter,
                s.denied as f64,
            ),
        ]
    }
}

/// Pods of this node by UID, as the API reported them.
#[derive(Debug, Default)]
pub struct KubePods {
    by_uid: RwLock<HashMap<String, PodMeta>>,
}

impl PodSource for KubePods {
    fn pod(&self, uid: &str) -> Option<PodMeta> {
        self.by_uid
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .cloned()
    }
}

/// The API side of a running agent.
pub struct Kube {
    pub pods: Arc<KubePods>,
    pub status: Arc<KubeStatus>,
    pub task: JoinHandle<()>,
}

/// Starts following this node's pods when the agent runs in a cluster; `None` otherwise (or
/// when disabled). Never fails: an unusable API is retried and reported.
pub fn start(cfg: &KubeConfig, cancel: CancellationToken) -> Option<Kube> {
    if !cfg.enabled {
        return None;
    }
    let config = match kube::Config::incluster() {
        Ok(c) => c,
        Err(e) => {
            info!("not in a Kubernetes cluster ({e}): workloads named from pod names");
            return None;
        }
    };
    let node = if cfg.node_name.is_empty() {
        std::env::var("NODE_NAME").unwrap_or_default()
    } else {
        cfg.node_name.clone()
    };
    let status = Arc::new(KubeStatus {
        node: node.clone(),
        ..KubeStatus::default()
    });
    let pods = Arc::new(KubePods::default());
    let follower = Follower {
        node,
        status: status.clone(),
        pods: pods.clone(),
        owners: HashMap::new(),
    };
    let task = tokio::spawn(async move {
        tokio::select! {
            () = cancel.cancelled() => {}
            () = follower.run(config) => {}
        }
    });
    Some(Kube { pods, status, task })
}

fn describe(e: &kube::Error) -> (String, bool) {
    match e {
        kube::Error::Api(s) => (
            format!("{} {}: {}", s.code, s.reason, s.message),
            s.code == 401 || s.code == 403,
        ),
        other => (other.to_string(), false),
    }
}

type OwnerKey = (WorkloadKind, String, String);

struct Follower {
    node: String,
    status: Arc<KubeStatus>,
    pods: Arc<KubePods>,
    owners: HashMap<OwnerKey, Result<Option<OwnerReference>, String>>,
}

/// Owner lookups answered from what the follower fetched.
struct Cached<'a>(&'a HashMap<OwnerKey, Result<Option<OwnerReference>, String>>);

impl Owners for Cached<'_> {
    fn owner_of(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<OwnerReference>, String> {
        self.0
            .get(&(kind, namespace.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_else(|| Err("not fetched".into()))
    }
}

impl Follower {
    async fn run(mut self, config: kube::Config) {
        let mut backoff = BACKOFF_MIN;
        loop {
            match kube::Client::try_from(config.clone()) {
                Ok(client) => match self.follow(client).await {
                    Ok(()) => backoff = BACKOFF_MIN,
                    Err(e) => {
                        let (why, denied) = describe(&e);
                        warn!(
                            error = why.as_str(),
                            "Kubernetes API unavailable; workloads named from pod names"
                        );
                        self.status.failed(why, denied);
                    }
                },
                Err(e) => self.status.failed(e.to_string(), false),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One list and the watch that follows it; returns when the watch ends.
    async fn follow(&mut self, client: kube::Client) -> Result<(), kube::Error> {
        let api: kube::Api<Pod> = kube::Api::all(client.clone());
        let selector = format!("spec.nodeName={}", self.node);
        let list = api
            .list(&kube::api::ListParams::default().fields(&selector))
            .await?;
        let mut fresh = HashMap::new();
        for pod in &list.items {
            if let Some((uid, meta)) = self.meta(&client, pod).await {
                fresh.insert(uid, meta);
            }
        }
        self.replace(fresh);
        self.status.connected.store(true, Relaxed);
        info!(
            pods = self.status.pods.load(Relaxed),
            node = self.node.as_str(),
            "following this node's pods from the Kubernetes API"
        );
        let version = list.metadata.resource_version.unwrap_or_default();
        let params = kube::api::WatchParams::default()
            .fields(&selector)
            .timeout(WATCH_SECS);
        let mut events = api.watch(&params, &version).await?.boxed();
        while let Some(event) = events.next().await {
            match event? {
                kube::api::WatchEvent::Added(pod) | kube::api::WatchEvent::Modified(pod) => {
                    if let Some((uid, meta)) = self.meta(&client, &pod).await {
                        self.upsert(uid, meta);
                    }
                }
                kube::api::WatchEvent::Deleted(pod) => {
                    if let Some(uid) = pod.metadata.uid {
                        self.remove(&uid);
                    }
                }
                kube::api::WatchEvent::Bookmark(_) => {}
                // 410 Gone: the version is too old; list again.
                kube::api::WatchEvent::Error(s) => return Err(kube::Error::Api(s)),
            }
        }
        Ok(())
    }

    async fn meta(&mut self, client: &kube::Client, pod: &Pod) -> Option<(String, PodMeta)> {
        let uid = pod.metadata.uid.clone()?;
        let namespace = pod.metadata.namespace.clone()?;
        let name = pod.metadata.name.clone()?;
        if let Some(owner) = controller(&pod.metadata) {
            self.fetch_owner(client, &owner.kind, &namespace, &owner.name)
                .await;
        }
        let (workload, err) = workload_of(pod, &mut Cached(&self.owners));
        if let Some(why) = err {
            self.status.failed(why, false);
        }
        Some((
            uid,
            PodMeta {
                namespace,
                name,
                workload,
            },
        ))
    }

    /// Fetches (once) the controller owner of a ReplicaSet or Job.
    async fn fetch_owner(&mut self, client: &kube::Client, kind: &str, ns: &str, name: &str) {
        let Some(kind) = WorkloadKind::from_kind(kind) else {
            return;
        };
        let key = (kind, ns.to_owned(), name.to_owned());
        if matches!(self.owners.get(&key), Some(Ok(_))) {
            return;
        }
        let meta = match kind {
            WorkloadKind::ReplicaSet => kube::Api::<ReplicaSet>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map(|o| o.metadata),
            WorkloadKind::Job => kube::Api::<Job>::namespaced(client.clone(), ns)
                .get(name)
                .await
                .map(|o| o.metadata),
            _ => return,
        };
        let answer = match meta {
            Ok(m) => Ok(controller(&m).cloned()),
            Err(e) => {
                let (why, denied) = describe(&e);
                self.status.failed(why.clone(), denied);
                Err(why)
            }
        };
        if self.owners.len() >= OWNER_CACHE {
            self.owners.clear();
        }
        self.owners.insert(key, answer);
    }

    fn replace(&self, fresh: HashMap<String, PodMeta>) {
        let mut map = self.pods.by_uid.write().unwrap_or_else(|p| p.into_inner());
        *map = fresh.into_iter().take(MAX_PODS).collect();
        self.status.pods.store(map.len() as u64, Relaxed);
    }

    fn upsert(&self, uid: String, meta: PodMeta) {
        let mut map = self.pods.by_uid.write().unwrap_or_else(|p| p.into_inner());
        if map.len() < MAX_PODS || map.contains_key(&uid) {
            map.insert(uid, meta);
        }
        self.status.pods.store(map.len() as u64, Relaxed);
    }

    fn remove(&self, uid: &str) {
        let mut map = self.pods.by_uid.write().unwrap_or_else(|p| p.into_inner());
        map.remove(uid);
        self.status.pods.store(map.len() as u64, Relaxed);
    }
}

#[cfg(test)]
mod tests;
