//! Pod UID -> (namespace, pod name) from the kubelet's /var/log/pods/<namespace>_<pod>_<uid>/
//! directories, which every kubelet writes whatever the runtime. Namespace and pod names are
//! DNS labels or subdomains, so neither contains `_`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Namespace and name of one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodName {
    pub namespace: String,
    pub name: String,
}

/// The index of one pod-logs directory, re-read when a UID is missing from it.
#[derive(Debug)]
pub struct PodIndex {
    root: PathBuf,
    by_uid: HashMap<String, PodName>,
    /// Whether the directory was read since the last `begin_scan`.
    fresh: bool,
}

impl PodIndex {
    pub fn new(root: &Path) -> PodIndex {
        PodIndex {
            root: root.to_path_buf(),
            by_uid: HashMap::new(),
            fresh: false,
        }
    }

    /// Allows one re-read of the directory during the next scan.
    pub fn begin_scan(&mut self) {
        self.fresh = false;
    }

    /// The pod with this UID; re-reads the directory (once per scan) when it is unknown.
    pub fn get(&mut self, uid: &str) -> Option<&PodName> {
        if !self.by_uid.contains_key(uid) && !self.fresh {
            self.by_uid = read_dir(&self.root);
            self.fresh = true;
        }
        self.by_uid.get(uid)
    }
}

fn read_dir(root: &Path) -> HashMap<String, PodName> {
    let Ok(dir) = std::fs::read_dir(root) else {
        return HashMap::new();
    };
    dir.flatten()
        .filter_map(|e| parse_dir_name(&e.file_name().to_string_lossy()))
        .collect()
}

/// `<namespace>_<pod>_<uid>` -> (uid, name).
pub fn parse_dir_name(name: &str) -> Option<(String, PodName)> {
    let mut parts = name.split('_');
    let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || namespace.is_empty() || pod.is_empty() || uid.len() != 36 {
        return None;
    }
    Some((
        uid.to_ascii_lowercase(),
        PodName {
            namespace: namespace.into(),
            name: pod.into(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_split_into_namespace_pod_and_uid() {
        let (uid, pod) =
            parse_dir_name("shop_checkout-7d9f8b6c5-x2k4p_8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c")
                .expect("kubelet layout");
        assert_eq!(uid, "8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c");
        assert_eq!(
            pod,
            PodName {
                namespace: "shop".into(),
                name: "checkout-7d9f8b6c5-x2k4p".into()
            }
        );
        for odd in [
            "",
            "a_b",
            "a_b_c_d",
            "_pod_8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c",
            "ns_pod_short",
        ] {
            assert_eq!(parse_dir_name(odd), None, "{odd}");
        }
    }

    #[test]
    fn a_missing_uid_rereads_the_directory_once_per_scan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uid = "8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c";
        let mut index = PodIndex::new(dir.path());
        index.begin_scan();
        assert_eq!(index.get(uid), None);
        std::fs::create_dir(dir.path().join(format!("shop_web-0_{uid}"))).expect("mkdir");
        assert_eq!(index.get(uid), None, "already read during this scan");
        index.begin_scan();
        assert_eq!(index.get(uid).map(|p| p.name.as_str()), Some("web-0"));
    }
}
