//! Container id and pod UID from /proc/<pid>/cgroup.
//!
//! Layouts handled (cgroup v2 `0::<path>` and v1 `N:<controllers>:<path>` lines alike; paths
//! may be relative to the reader's cgroup namespace, `/../..`):
//!
//! | driver | runtime | path (last segments) |
//! | --- | --- | --- |
//! | systemd | containerd | `kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope` |
//! | systemd | CRI-O | `kubepods-pod<uid>.slice/crio-<id>.scope` |
//! | systemd | docker | `system.slice/docker-<id>.scope` |
//! | cgroupfs | containerd | `kubepods/besteffort/pod<uid>/<id>` |
//! | cgroupfs | CRI-O | `kubepods/burstable/pod<uid>/crio-<id>` |
//! | cgroupfs | docker | `docker/<id>` |
//!
//! A container id is 64 hex digits. CRI-O's `crio-conmon-<id>` is its monitor, not the
//! container, and is ignored.

/// What a cgroup path says about a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupInfo {
    pub container_id: Option<String>,
    /// The kubelet's pod UID (with dashes), when the process runs in a pod's cgroup.
    pub pod_uid: Option<String>,
}

/// Outcome of reading one cgroup file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Info(CgroupInfo),
    /// Lines that are not `id:controllers:path`, or a `kubepods` path without a readable pod
    /// UID: counted as odd cgroup paths.
    Odd(CgroupInfo),
}

/// Parses the text of /proc/<pid>/cgroup.
pub fn parse(text: &str) -> Parsed {
    let mut info = CgroupInfo::default();
    let mut odd = false;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(_controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            odd = true;
            continue;
        };
        let (container, pod, kubepods) = parse_path(path);
        if info.container_id.is_none() {
            info.container_id = container;
        }
        if info.pod_uid.is_none() {
            info.pod_uid = pod;
        }
        odd |= kubepods && info.pod_uid.is_none();
    }
    if odd {
        Parsed::Odd(info)
    } else {
        Parsed::Info(info)
    }
}

/// (container id, pod uid, whether the path is under kubepods).
fn parse_path(path: &str) -> (Option<String>, Option<String>, bool) {
    let mut container = None;
    let mut pod = None;
    let mut kubepods = false;
    for seg in path.split('/') {
        if seg.starts_with("kubepods") {
            kubepods = true;
        }
        if let Some(uid) = pod_uid(seg) {
            pod = Some(uid);
        }
        if let Some(id) = container_id(seg) {
            container = Some(id);
        }
    }
    (container, pod, kubepods)
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
fn pod_uid(seg: &str) -> Option<String> {
    let raw = if let Some(rest) = seg.strip_prefix("pod") {
        rest
    } else if seg.starts_with("kubepods") {
        let slice = seg.strip_suffix(".slice")?;
        let at = slice.rfind("-pod")?;
        &slice[at + 4..]
    } else {
        return None;
    };
    let uid = raw.replace('_', "-");
    let ok = uid.len() == 36
        && uid.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    ok.then(|| uid.to_ascii_lowercase())
}

/// A 64-hex container id, bare or with a runtime prefix and a `.scope` suffix.
fn container_id(seg: &str) -> Option<String> {
    let s = seg.strip_suffix(".scope").unwrap_or(seg);
    if s.starts_with("crio-conmon-") {
        return None;
    }
    let id = [
        "cri-containerd-",
        "crio-",
        "docker-",
        "libpod-",
        "containerd-",
    ]
    .iter()
    .find_map(|p| s.strip_prefix(p))
    .unwrap_or(s);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const UID: &str = "8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c";

    fn info(container: bool, pod: bool) -> CgroupInfo {
        CgroupInfo {
            container_id: container.then(|| ID.to_string()),
            pod_uid: pod.then(|| UID.to_string()),
        }
    }

    #[rstest]
    #[case::v2_systemd_containerd(
        "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8f6c1ab2_1d3e_4f5a_9b7c_0d1e2f3a4b5c.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        info(true, true)
    )]
    #[case::v2_systemd_crio_guaranteed(
        "0::/kubepods.slice/kubepods-pod8f6c1ab2_1d3e_4f5a_9b7c_0d1e2f3a4b5c.slice/crio-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        info(true, true)
    )]
    #[case::v2_cgroupfs_containerd(
        "0::/kubepods/besteffort/pod8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        info(true, true)
    )]
    #[case::v2_relative_to_a_cgroup_namespace(
        "0::/../../kubepods-besteffort-pod8f6c1ab2_1d3e_4f5a_9b7c_0d1e2f3a4b5c.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        info(true, true)
    )]
    #[case::v1_cgroupfs_crio(
        "12:pids:/kubepods/burstable/pod8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c/crio-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n11:memory:/kubepods/burstable/pod8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c/crio-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n1:name=systemd:/kubepods/burstable/pod8f6c1ab2-1d3e-4f5a-9b7c-0d1e2f3a4b5c/crio-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        info(true, true)
    )]
    #[case::v1_systemd_containerd(
        "4:cpu,cpuacct:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8f6c1ab2_1d3e_4f5a_9b7c_0d1e2f3a4b5c.slice/cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        info(true, true)
    )]
    #[case::docker_cgroupfs(
        "0::/docker/0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        info(true, false)
    )]
    #[case::docker_systemd(
        "0::/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        info(true, false)
    )]
    #[case::host_service("0::/system.slice/nginx.service", info(false, false))]
    #[case::crio_conmon_is_not_the_container(
        "0::/kubepods.slice/kubepods-pod8f6c1ab2_1d3e_4f5a_9b7c_0d1e2f3a4b5c.slice/crio-conmon-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
        info(false, true)
    )]
    #[case::empty("", info(false, false))]
    fn recognised_layouts(#[case] text: &str, #[case] want: CgroupInfo) {
        assert_eq!(parse(text), Parsed::Info(want));
    }

    #[rstest]
    #[case::no_colons("garbage without separators")]
    #[case::kubepods_without_a_uid("0::/kubepods/besteffort/podNOT-A-UID/abc")]
    #[case::truncated_uid("0::/kubepods.slice/kubepods-pod8f6c1ab2_1d3e.slice/x.scope")]
    fn odd_paths_are_reported_never_a_panic(#[case] text: &str) {
        assert!(matches!(parse(text), Parsed::Odd(_)), "{text}");
    }
}
