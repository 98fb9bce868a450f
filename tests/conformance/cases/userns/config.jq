.linux.namespaces += [{"type": "user"}]
| .linux.uidMappings = [{"containerID": 0, "hostID": 0, "size": 65536}]
| .linux.gidMappings = [{"containerID": 0, "hostID": 0, "size": 65536}]
| .mounts |= map(select(.destination != "/sys/fs/cgroup"))
