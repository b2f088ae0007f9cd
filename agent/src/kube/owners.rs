//! A pod's workload from its controller owner reference: ReplicaSet -> its Deployment,
//! Job -> its CronJob, StatefulSet and DaemonSet as they are; a pod without a controller is its
//! own workload. Pure: the ReplicaSets' and Jobs' own owners come from an [`Owners`] lookup
//! (the API, cached, in the agent; recorded objects in the tests).

use agent_core::server::{Workload, WorkloadKind};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The controller owner of an object's metadata, if any.
pub fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let refs = meta.owner_references.as_deref()?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .or_else(|| refs.first())
}

/// Looks up the controller owner of a ReplicaSet or Job (the API's answer), `Ok(None)` when it
/// has none, `Err` when it could not be read.
pub trait Owners {
    fn owner_of(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<Option<OwnerReference>, String>;
}

/// The workload of `pod`. When a ReplicaSet's or Job's owner cannot be read, the ReplicaSet or
/// Job itself is the answer and the error is returned alongside.
pub fn workload_of(pod: &Pod, owners: &mut impl Owners) -> (Workload, Option<String>) {
    let meta = &pod.metadata;
    let pod_name = meta.name.clone().unwrap_or_default();
    let Some(owner) = controller(meta) else {
        return (
            Workload {
                kind: Some(WorkloadKind::Pod),
                name: pod_name.into(),
            },
            None,
        );
    };
    let named = |kind: Option<WorkloadKind>, name: &str| Workload {
        kind,
        name: name.into(),
    };
    let kind = WorkloadKind::from_kind(&owner.kind);
    let ns = meta.namespace.as_deref().unwrap_or_default();
    let parent = match kind {
        Some(WorkloadKind::ReplicaSet) => {
            Some((WorkloadKind::ReplicaSet, WorkloadKind::Deployment))
        }
        Some(WorkloadKind::Job) => Some((WorkloadKind::Job, WorkloadKind::CronJob)),
        _ => None,
    };
    let Some((child, parent)) = parent else {
        // StatefulSet, DaemonSet, or a kind apitap has no name for (a custom controller, a
        // static pod's Node): the owner's name, with its kind when known.
        return (named(kind, &owner.name), None);
    };
    match owners.owner_of(child, ns, &owner.name) {
        Ok(Some(up)) if WorkloadKind::from_kind(&up.kind) == Some(parent) => {
            (named(Some(parent), &up.name), None)
        }
        Ok(_) => (named(Some(child), &owner.name), None),
        Err(e) => (named(Some(child), &owner.name), Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::api::batch::v1::Job;
    use std::collections::HashMap;

    /// Owners from recorded API objects (`kubectl get -o json`).
    #[derive(Default)]
    struct Recorded {
        objects: HashMap<(WorkloadKind, String, String), ObjectMeta>,
        calls: usize,
    }

    impl Recorded {
        fn with_replicaset(mut self, json: &str) -> Self {
            let rs: ReplicaSet = serde_json::from_str(json).expect("recorded ReplicaSet");
            self.insert(WorkloadKind::ReplicaSet, rs.metadata);
            self
        }

        fn with_job(mut self, json: &str) -> Self {
            let job: Job = serde_json::from_str(json).expect("recorded Job");
            self.insert(WorkloadKind::Job, job.metadata);
            self
        }

        fn insert(&mut self, kind: WorkloadKind, meta: ObjectMeta) {
            let key = (
                kind,
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            );
            self.objects.insert(key, meta);
        }
    }

    impl Owners for Recorded {
        fn owner_of(
            &mut self,
            kind: WorkloadKind,
            namespace: &str,
            name: &str,
        ) -> Result<Option<OwnerReference>, String> {
            self.calls += 1;
            let meta = self
                .objects
                .get(&(kind, namespace.into(), name.into()))
                .ok_or_else(|| format!("{} {namespace}/{name} not found", kind.as_str()))?;
            Ok(controller(meta).cloned())
        }
    }

    fn pod(json: &str) -> Pod {
        serde_json::from_str(json).expect("recorded Pod")
    }

    fn resolved(w: &Workload) -> (Option<WorkloadKind>, &str) {
        (w.kind, &w.name)
    }

    #[test]
    fn a_deployment_pod_resolves_through_its_replicaset() {
        let mut owners =
            Recorded::default().with_replicaset(include_str!("testdata/replicaset.json"));
        let (w, err) = workload_of(
            &pod(include_str!("testdata/pod-deployment.json")),
            &mut owners,
        );
        assert_eq!(resolved(&w), (Some(WorkloadKind::Deployment), "checkout"));
        assert_eq!((err, owners.calls), (None, 1));
    }

    #[test]
    fn a_statefulset_pod_needs_no_lookup() {
        let mut owners = Recorded::default();
        let (w, err) = workload_of(
            &pod(include_str!("testdata/pod-statefulset.json")),
            &mut owners,
        );
        assert_eq!(resolved(&w), (Some(WorkloadKind::StatefulSet), "web"));
        assert_eq!((err, owners.calls), (None, 0));
    }

    #[test]
    fn a_cronjob_pod_resolves_through_its_job() {
        let mut owners = Recorded::default().with_job(include_str!("testdata/job.json"));
        let (w, err) = workload_of(&pod(include_str!("testdata/pod-job.json")), &mut owners);
        assert_eq!(resolved(&w), (Some(WorkloadKind::CronJob), "report"));
        assert_eq!(err, None);
    }

    #[test]
    fn an_unreadable_replicaset_leaves_the_replicaset_and_says_why() {
        let mut owners = Recorded::default();
        let (w, err) = workload_of(
            &pod(include_str!("testdata/pod-deployment.json")),
            &mut owners,
        );
        assert_eq!(
            resolved(&w),
            (Some(WorkloadKind::ReplicaSet), "checkout-7d9f8b6c5")
        );
        assert_eq!(
            err.as_deref(),
            Some("replicaset shop/checkout-7d9f8b6c5 not found")
        );
    }

    #[test]
    fn a_pod_without_owner_is_its_own_workload() {
        let mut json: serde_json::Value =
            serde_json::from_str(include_str!("testdata/pod-statefulset.json")).expect("json");
        json["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("ownerReferences");
        let p: Pod = serde_json::from_value(json).expect("pod");
        let (w, _) = workload_of(&p, &mut Recorded::default());
        assert_eq!(resolved(&w), (Some(WorkloadKind::Pod), "web-0"));
    }
}
