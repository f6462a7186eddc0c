#!/bin/sh
# Apache httpd 2.4 + mod_http2 on 127.0.0.1:PORT, serving WWW over cleartext HTTP/1.1 that
# upgrades to HTTP/2 on `Upgrade: h2c` (Protocols h2c http/1.1; RFC 7540 §3.2). Node's http2 and
# nghttpd do not do the upgrade. Prints "listening PORT" once Apache serves; SIGTERM stops it.
# Usage (root): apache-h2c.sh WWW RUNDIR PORT (WWW readable by www-data; RUNDIR takes the
# config, pid file and error log).
set -eu
www=$1; run=$2; port=$3
mods=/usr/lib/apache2/modules
cat > "$run/httpd.conf" <<CONF
ServerRoot $run
ServerName 127.0.0.1
PidFile $run/httpd.pid
DefaultRuntimeDir $run
ErrorLog $run/error.log
LoadModule mpm_event_module $mods/mod_mpm_event.so
LoadModule authz_core_module $mods/mod_authz_core.so
LoadModule mime_module $mods/mod_mime.so
LoadModule http2_module $mods/mod_http2.so
TypesConfig /etc/mime.types
Listen 127.0.0.1:$port
Protocols h2c http/1.1
# an upgraded connection otherwise counts as idle (GOAWAY "timeout") before a slow client's next stream
KeepAliveTimeout 30
DocumentRoot $www
<Directory $www>
  Require all granted
</Directory>
User www-data
Group www-data
CONF
: > "$run/error.log"
apache2 -f "$run/httpd.conf" -DFOREGROUND &
apid=$!
trap 'kill -TERM $apid; wait $apid; exit 0' TERM INT
i=0
while ! grep -q 'resuming normal operations' "$run/error.log"; do
  if ! kill -0 $apid 2>/dev/null || [ $i -ge 300 ]; then cat "$run/error.log" >&2; exit 1; fi
  sleep 0.1; i=$((i+1))
done
echo "listening $port"
wait $apid
