//! Container models: create request, `Config`, `HostConfig`, inspect, list, wait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::de::{
    is_empty_str, is_false, is_none_or_empty_map, is_none_or_empty_vec, is_zero_i64, nd,
};

/// Serialises as `{}` and accepts any JSON object (Go's `struct{}` map values).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `"80/tcp": {}` sets (`ExposedPorts`, `Volumes`).
pub type PortSet = BTreeMap<String, Empty>;

/// `HealthConfig`: durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthConfig {
    #[serde(skip_serializing_if = "is_none_or_empty_vec")]
    pub test: Option<Vec<String>>,
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "nd")]
    pub interval: i64,
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "nd")]
    pub timeout: i64,
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "nd")]
    pub start_period: i64,
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "nd")]
    pub start_interval: i64,
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "nd")]
    pub retries: i64,
}

/// The container `Config` (create request body top level, inspect `.Config`, image inspect
/// `.Config`/`.ContainerConfig`).
///
/// `Entrypoint`/`Cmd`/`Shell` accept a string or an array; `None` is JSON null/absent and is
/// different from `Some(vec![])` and `Some(vec!["".into()])` (see `berth_spec::merge`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(deserialize_with = "nd")]
    pub hostname: String,
    #[serde(deserialize_with = "nd")]
    pub domainname: String,
    #[serde(deserialize_with = "nd")]
    pub user: String,
    #[serde(deserialize_with = "nd")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "nd")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "nd")]
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub exposed_ports: Option<PortSet>,
    #[serde(deserialize_with = "nd")]
    pub tty: bool,
    #[serde(deserialize_with = "nd")]
    pub open_stdin: bool,
    #[serde(deserialize_with = "nd")]
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nd")]
    pub args_escaped: bool,
    #[serde(deserialize_with = "nd")]
    pub image: String,
    pub volumes: Option<PortSet>,
    #[serde(deserialize_with = "nd")]
    pub working_dir: String,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "is_false", deserialize_with = "nd")]
    pub network_disabled: bool,
    #[serde(skip_serializing_if = "is_empty_str", deserialize_with = "nd")]
    pub mac_address: String,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "is_empty_str", deserialize_with = "nd")]
    pub stop_signal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        skip_serializing_if = "is_none_or_empty_vec",
        deserialize_with = "crate::strslice::deserialize"
    )]
    pub shell: Option<Vec<String>>,
}

/// `LogConfig {Type, Config}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(deserialize_with = "nd")]
    pub r#type: String,
    #[serde(deserialize_with = "nd")]
    pub config: BTreeMap<String, String>,
}

/// `RestartPolicy {Name, MaximumRetryCount}`; Name is "", "no", "always", "unless-stopped",
/// "on-failure".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    #[serde(deserialize_with = "nd")]
    pub name: String,
    #[serde(deserialize_with = "nd")]
    pub maximum_retry_count: i64,
}

/// One host binding of a container port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct PortBinding {
    #[serde(deserialize_with = "nd")]
    pub host_ip: String,
    #[serde(deserialize_with = "nd")]
    pub host_port: String,
}

/// `"80/tcp": [{"HostIp":"","HostPort":"8080"}]` (a value may be null).
pub type PortMap = BTreeMap<String, Option<Vec<PortBinding>>>;

/// `{Path, Weight}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// `{Path, Rate}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// `--device` mapping.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// `--gpus` style device request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DeviceRequest {
    pub driver: String,
    pub count: i64,
    #[serde(rename = "DeviceIDs")]
    pub device_ids: Option<Vec<String>>,
    pub capabilities: Option<Vec<Vec<String>>>,
    pub options: Option<BTreeMap<String, String>>,
}

/// `--ulimit name=soft:hard`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub hard: i64,
    pub soft: i64,
}

/// `Mount.BindOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct BindOptions {
    #[serde(skip_serializing_if = "is_empty_str")]
    pub propagation: String,
    #[serde(skip_serializing_if = "is_false")]
    pub non_recursive: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub create_mountpoint: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only_non_recursive: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only_force_recursive: bool,
}

/// `Mount.VolumeOptions.DriverConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct DriverConfig {
    #[serde(skip_serializing_if = "is_empty_str")]
    pub name: String,
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub options: Option<BTreeMap<String, String>>,
}

/// `Mount.VolumeOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct VolumeOptions {
    #[serde(skip_serializing_if = "is_false")]
    pub no_copy: bool,
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub subpath: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<DriverConfig>,
}

/// `Mount.TmpfsOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct TmpfsOptions {
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub size_bytes: i64,
    /// File mode (octal semantics, sent as a decimal number).
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
    /// Extra options as `[["noexec"], ["uid","1000"]]`.
    #[serde(skip_serializing_if = "is_none_or_empty_vec")]
    pub options: Option<Vec<Vec<String>>>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// `HostConfig.Mounts[]` (`--mount`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Mount {
    #[serde(skip_serializing_if = "is_empty_str")]
    pub r#type: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub source: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub target: String,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub consistency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

/// The `HostConfig` of a create request / inspect (Resources flattened in, as in Go).
///
/// Every field defaults; unknown fields are ignored. `Option<Vec<_>>` fields serialise as
/// `null` when `None`, matching what dockerd emits for nil slices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    #[serde(rename = "ContainerIDFile", deserialize_with = "nd")]
    pub container_id_file: String,
    #[serde(deserialize_with = "nd")]
    pub log_config: LogConfig,
    #[serde(deserialize_with = "nd")]
    pub network_mode: String,
    pub port_bindings: Option<PortMap>,
    #[serde(deserialize_with = "nd")]
    pub restart_policy: RestartPolicy,
    #[serde(deserialize_with = "nd")]
    pub auto_remove: bool,
    #[serde(deserialize_with = "nd")]
    pub volume_driver: String,
    pub volumes_from: Option<Vec<String>>,
    /// `[height, width]`.
    #[serde(deserialize_with = "nd")]
    pub console_size: [u64; 2],
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub cap_add: Option<Vec<String>>,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub cap_drop: Option<Vec<String>>,
    #[serde(deserialize_with = "nd")]
    pub cgroupns_mode: String,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    #[serde(deserialize_with = "nd")]
    pub ipc_mode: String,
    #[serde(deserialize_with = "nd")]
    pub cgroup: String,
    pub links: Option<Vec<String>>,
    #[serde(deserialize_with = "nd")]
    pub oom_score_adj: i64,
    #[serde(deserialize_with = "nd")]
    pub pid_mode: String,
    #[serde(deserialize_with = "nd")]
    pub privileged: bool,
    #[serde(deserialize_with = "nd")]
    pub publish_all_ports: bool,
    #[serde(deserialize_with = "nd")]
    pub readonly_rootfs: bool,
    pub security_opt: Option<Vec<String>>,
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub storage_opt: Option<BTreeMap<String, String>>,
    /// `{"/run": "size=1m"}`.
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode", deserialize_with = "nd")]
    pub uts_mode: String,
    #[serde(deserialize_with = "nd")]
    pub userns_mode: String,
    #[serde(deserialize_with = "nd")]
    pub shm_size: i64,
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub sysctls: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "is_empty_str", deserialize_with = "nd")]
    pub runtime: String,
    #[serde(deserialize_with = "nd")]
    pub isolation: String,

    // ---- Resources (flattened in Go) ----
    #[serde(deserialize_with = "nd")]
    pub cpu_shares: i64,
    #[serde(deserialize_with = "nd")]
    pub memory: i64,
    #[serde(deserialize_with = "nd")]
    pub nano_cpus: i64,
    #[serde(deserialize_with = "nd")]
    pub cgroup_parent: String,
    #[serde(deserialize_with = "nd")]
    pub blkio_weight: u16,
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    pub blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    pub blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    #[serde(deserialize_with = "nd")]
    pub cpu_period: i64,
    #[serde(deserialize_with = "nd")]
    pub cpu_quota: i64,
    #[serde(deserialize_with = "nd")]
    pub cpu_realtime_period: i64,
    #[serde(deserialize_with = "nd")]
    pub cpu_realtime_runtime: i64,
    #[serde(deserialize_with = "nd")]
    pub cpuset_cpus: String,
    #[serde(deserialize_with = "nd")]
    pub cpuset_mems: String,
    pub devices: Option<Vec<DeviceMapping>>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub device_requests: Option<Vec<DeviceRequest>>,
    #[serde(skip_serializing_if = "is_zero_i64", deserialize_with = "nd")]
    pub kernel_memory: i64,
    #[serde(
        rename = "KernelMemoryTCP",
        skip_serializing_if = "is_zero_i64",
        deserialize_with = "nd"
    )]
    pub kernel_memory_tcp: i64,
    #[serde(deserialize_with = "nd")]
    pub memory_reservation: i64,
    #[serde(deserialize_with = "nd")]
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<Ulimit>>,
    #[serde(deserialize_with = "nd")]
    pub cpu_count: i64,
    #[serde(deserialize_with = "nd")]
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps", deserialize_with = "nd")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth", deserialize_with = "nd")]
    pub io_maximum_bandwidth: u64,
    // ---- end Resources ----
    #[serde(skip_serializing_if = "is_none_or_empty_vec")]
    pub mounts: Option<Vec<Mount>>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
}

/// `EndpointSettings.IPAMConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "is_empty_str")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "is_empty_str")]
    pub ipv6_address: String,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "is_none_or_empty_vec")]
    pub link_local_ips: Option<Vec<String>>,
}

/// A container's settings on one network (create request and inspect/list).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(rename = "Links")]
    pub links: Option<Vec<String>>,
    #[serde(rename = "Aliases")]
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "MacAddress", deserialize_with = "nd")]
    pub mac_address: String,
    #[serde(rename = "DriverOpts")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "GwPriority", deserialize_with = "nd")]
    pub gw_priority: i64,
    #[serde(rename = "NetworkID", deserialize_with = "nd")]
    pub network_id: String,
    #[serde(rename = "EndpointID", deserialize_with = "nd")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway", deserialize_with = "nd")]
    pub gateway: String,
    #[serde(rename = "IPAddress", deserialize_with = "nd")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen", deserialize_with = "nd")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway", deserialize_with = "nd")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address", deserialize_with = "nd")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen", deserialize_with = "nd")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// `NetworkingConfig {EndpointsConfig}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

/// Body of `POST /containers/create`: `Config` fields at top level plus `HostConfig` and
/// `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerCreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(rename = "HostConfig", deserialize_with = "nd")]
    pub host_config: HostConfig,
    #[serde(rename = "NetworkingConfig", deserialize_with = "nd")]
    pub networking_config: NetworkingConfig,
}

/// Response of `POST /containers/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerCreateResponse {
    pub id: String,
    /// dockerd sends `[]` (not null) when there is nothing to warn about.
    pub warnings: Vec<String>,
}

/// One health check probe result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthcheckResult {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// `State.Health`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Health {
    pub status: String,
    pub failing_streak: i64,
    pub log: Option<Vec<HealthcheckResult>>,
}

/// Inspect `.State`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerState {
    /// "created", "running", "paused", "restarting", "removing", "exited", "dead".
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    /// RFC 3339 nano; `0001-01-01T00:00:00Z` when never started.
    pub started_at: String,
    pub finished_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// `GraphDriver {Data, Name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct GraphDriver {
    pub data: Option<BTreeMap<String, String>>,
    pub name: String,
}

/// A mount as reported by inspect/list (`MountPoint`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct MountPoint {
    pub r#type: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(skip_serializing_if = "is_empty_str")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// `{Addr, PrefixLen}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Address {
    pub addr: String,
    pub prefix_len: i64,
}

/// Inspect `.NetworkSettings` (the 1.43-era shape, including the deprecated top-level
/// default-bridge fields).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkSettings {
    #[serde(rename = "Bridge")]
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "HairpinMode")]
    pub hairpin_mode: bool,
    #[serde(rename = "LinkLocalIPv6Address")]
    pub link_local_ipv6_address: String,
    #[serde(rename = "LinkLocalIPv6PrefixLen")]
    pub link_local_ipv6_prefix_len: i64,
    #[serde(rename = "Ports")]
    pub ports: PortMap,
    #[serde(rename = "SandboxKey")]
    pub sandbox_key: String,
    #[serde(rename = "SecondaryIPAddresses")]
    pub secondary_ip_addresses: Option<Vec<Address>>,
    #[serde(rename = "SecondaryIPv6Addresses")]
    pub secondary_ipv6_addresses: Option<Vec<Address>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(rename = "Gateway")]
    pub gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: i64,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: i64,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "MacAddress")]
    pub mac_address: String,
    #[serde(rename = "Networks")]
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// Response of `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    /// RFC 3339 nano.
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: ContainerState,
    pub image: String,
    pub resolv_conf_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub log_path: String,
    /// With the leading slash: `/name`.
    pub name: String,
    pub restart_count: i64,
    pub driver: String,
    pub platform: String,
    pub mount_label: String,
    pub process_label: String,
    pub app_armor_profile: String,
    #[serde(rename = "ExecIDs")]
    pub exec_ids: Option<Vec<String>>,
    pub host_config: HostConfig,
    pub graph_driver: GraphDriver,
    /// Only with `?size=1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub mounts: Vec<MountPoint>,
    pub config: ContainerConfig,
    pub network_settings: NetworkSettings,
}

/// A published port in the container list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Port {
    #[serde(rename = "IP", skip_serializing_if = "is_empty_str")]
    pub ip: String,
    #[serde(rename = "PrivatePort")]
    pub private_port: u16,
    #[serde(rename = "PublicPort", skip_serializing_if = "is_zero_u16")]
    pub public_port: u16,
    #[serde(rename = "Type")]
    pub r#type: String,
}

fn is_zero_u16(n: &u16) -> bool {
    *n == 0
}

/// `ContainerSummary.HostConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SummaryHostConfig {
    pub network_mode: String,
    #[serde(skip_serializing_if = "is_none_or_empty_map")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `ContainerSummary.NetworkSettings`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct SummaryNetworkSettings {
    pub networks: BTreeMap<String, EndpointSettings>,
}

/// One element of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    /// Unix seconds.
    pub created: i64,
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: SummaryHostConfig,
    pub network_settings: SummaryNetworkSettings,
    pub mounts: Vec<MountPoint>,
}

/// `WaitResponse.Error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WaitExitError {
    pub message: String,
}

/// Response of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    pub error: Option<WaitExitError>,
}

/// `POST /containers/{id}/exec` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExecConfig {
    #[serde(deserialize_with = "nd")]
    pub user: String,
    #[serde(deserialize_with = "nd")]
    pub privileged: bool,
    #[serde(deserialize_with = "nd")]
    pub tty: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u64; 2]>,
    #[serde(deserialize_with = "nd")]
    pub attach_stdin: bool,
    #[serde(deserialize_with = "nd")]
    pub attach_stderr: bool,
    #[serde(deserialize_with = "nd")]
    pub attach_stdout: bool,
    #[serde(deserialize_with = "nd")]
    pub detach: bool,
    #[serde(deserialize_with = "nd")]
    pub detach_keys: String,
    pub env: Option<Vec<String>>,
    #[serde(deserialize_with = "nd")]
    pub working_dir: String,
    #[serde(deserialize_with = "crate::strslice::deserialize")]
    pub cmd: Option<Vec<String>>,
}

/// `{"Id": "..."}` (exec create response and similar).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct IdResponse {
    pub id: String,
}

/// One entry of `GET /containers/{id}/changes` (Kind: 0 modified, 1 added, 2 deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct FilesystemChange {
    pub path: String,
    pub kind: u8,
}

/// Response of `GET /containers/{id}/top`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ContainerTopResponse {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}
