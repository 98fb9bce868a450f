.linux.rootfsPropagation = "rslave"
| .mounts += [
  {"destination": "/mnt/shared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
  {"destination": "/mnt/private", "type": "tmpfs", "source": "tmpfs", "options": ["rprivate"]},
  {"destination": "/mnt/slave", "type": "bind", "source": "/tmp", "options": ["rbind", "rslave"]}
]
