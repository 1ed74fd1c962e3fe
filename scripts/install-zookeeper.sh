#!/bin/sh
# Install Debian's ZooKeeper (server jars + java) for epum's tests, if missing.
#
# The tests start their own server from /usr/share/java/zookeeper.jar (see
# tests/zk_server.py); they need no running system service.  Idempotent:
# does nothing when the jar and java are already there.
set -eu

JARS="/usr/share/java/zookeeper.jar /usr/share/java/netty-codec.jar /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar"

have_all() {
    command -v java >/dev/null 2>&1 || return 1
    for jar in $JARS; do [ -f "$jar" ] || return 1; done
}

if have_all; then
    echo "zookeeper: already installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "zookeeper: not installed, and installing it needs root:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y zookeeper" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends zookeeper

if ! have_all; then
    echo "zookeeper: installed, but java or a jar ($JARS) is missing" >&2
    exit 1
fi
echo "zookeeper: installed"
