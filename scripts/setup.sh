#!/usr/bin/env bash
# Installs everything telegen needs on a fresh Debian 12 machine (as root), then builds it.
# Idempotent: re-running only installs what is missing and rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  # build: BPF toolchain (CO-RE objects, skeletons), native addon against the system libbpf
  clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make g++ python3
  # tests: real peers and the independent oracle
  tshark curl dnsutils dnsmasq-base nghttp2-client nghttp2-server postgresql librdkafka-dev kcat wrk iproute2 procps libcap2-bin openssl
  # file I/O and security tests: strace -f -y is the oracle of which syscalls ran on which file
  strace
  # logs inetd test: systemd-socket-activate (--inetd -a: the connection on the service's stdin/stdout)
  systemd
  redis-server redis-tools
  # GnuTLS test: Debian's GnuTLS programs (wget, git-remote-https via libcurl3-gnutls, gnutls-cli/-serv)
  wget git gnutls-bin
  # DNS over TLS / HTTPS tests: unbound (tls-port, https-port) and kdig (GnuTLS DoT client with SSLKEYLOGFILE)
  unbound knot-dnsutils
  # PostgreSQL big-reads test: psycopg2 (libpq from python, a named cursor's FETCHes)
  python3-psycopg2
  # discovery test: a Go binary built in the test (.go.buildinfo)
  golang-go
  # page test: headless Chromium driven by playwright-core
  chromium
  # agent-overhead bench: nginx as a second traced server (started by the bench on 127.0.0.1)
  nginx
  # http2 h2c upgrade test: Apache httpd with mod_http2 (started by the test on 127.0.0.1)
  apache2
  # h2c tail test: gRPC C-core (server and client on 127.0.0.1)
  python3-grpcio
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections || true
  apt-get update -qq
  # Packages with daemons (nginx, apache2, postgresql, redis) must not start them: the tests and benches
  # start their own on 127.0.0.1, and a packaged nginx would listen on every address.
  policy_rc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_rc=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$policy_rc" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
