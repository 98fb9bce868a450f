.mounts += [{"destination": "/mnt/ro", "type": "bind", "source": "/tmp", "options": ["rbind", "ro", "nosuid", "nodev"]}]
