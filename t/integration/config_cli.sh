#!/bin/bash
# config_cli.sh - relayd -t / -n / -f and bad configurations (DESIGN §4, §5).
set -u
. "$(dirname "$0")/../lib.sh"
relayd=$top_builddir/relayd/relayd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

printf 'hostname = mx.example\nqueue_dir = %s/q\n' "$tmp" > "$tmp/good.conf"
check "-t accepts a good file" "$relayd" -t -f "$tmp/good.conf"
out=$("$relayd" -t -f "$tmp/good.conf" 2>&1)
check "-t prints nothing for a good file" test -z "$out"

"$relayd" -n -f "$tmp/good.conf" > "$tmp/dump"
check "-n prints the value set" grep -qx 'hostname = mx.example' "$tmp/dump"
check "-n prints defaults: message_size_limit" grep -qx 'message_size_limit = 36700160' "$tmp/dump"
check "-n prints defaults: queue_map_size" grep -qx 'queue_map_size = 8G' "$tmp/dump"
check "-n prints defaults: smtpd_timeout" grep -qx 'smtpd_timeout = 300s' "$tmp/dump"
check "-n prints defaults: retry_min" grep -qx 'retry_min = 5m' "$tmp/dump"
check "-n prints defaults: trusted_networks" grep -qx 'trusted_networks = 127.0.0.0/8, ::1/128' "$tmp/dump"
check "-n prints the derived control_socket" grep -qx "control_socket = $tmp/q/control" "$tmp/dump"
keys=$(grep -c ' = \| =$' "$tmp/dump")
check "-n prints every one of the 51 keys ($keys)" test "$keys" -eq 51
for k in hostname smtp_listen submission_listen submissions_listen queue_dir \
	queue_map_size trusted_networks tls_cert_file tls_key_file auth_users_file \
	sender_login_map message_size_limit recipient_limit smtpd_timeout \
	client_connection_limit smtpd_session_limit dns_servers delivery_port relayhost relayhost_auth \
	tls_outbound tls_ca_file retry_min retry_max queue_lifetime bounce_lifetime \
	delay_warning destination_concurrency destination_recipient_limit \
	delivery_concurrency control_socket syslog_name user sender_login_policy \
	inet_protocols smtp_bind_address smtp_connect_timeout smtp_helo_timeout \
	smtp_command_timeout smtp_data_xfer_timeout smtp_data_done_timeout \
	tls_policy destination_rate \
	bounce_notice_recipient metrics_listen log_format dkim_keys dkim_expire; do
	check "-n has DESIGN key $k" grep -q "^$k =" "$tmp/dump"
done

# -n never prints a secret, and what it prints loads again.
printf 'hostname = mx.example\nqueue_dir = %s/q\nrelayhost_auth = relay-user:Pa55:w0rd\n' \
	"$tmp" > "$tmp/secret.conf"
"$relayd" -n -f "$tmp/secret.conf" > "$tmp/secret.dump" 2>/dev/null
check "-n masks the relayhost_auth password" grep -qx 'relayhost_auth = relay-user:\*\*\*\*\*\*\*\*' "$tmp/secret.dump"
check "-n prints no part of the password" sh -c "! grep -q 'Pa55\|w0rd' '$tmp/secret.dump'"
"$relayd" -t -f "$tmp/secret.dump" > "$tmp/out" 2>&1
rc=$?
check "the masked -n output passes -t" test "$rc" -eq 0
check "... with a warning that the password is the mask" \
	grep -q "relayhost_auth: the password is the mask relayd -n prints" "$tmp/out"

# message_size_limit is bounded by what the queue can hold.
printf 'queue_map_size = 64M\nmessage_size_limit = 40M\n' > "$tmp/size.conf"
"$relayd" -t -f "$tmp/size.conf" > "$tmp/out" 2>&1
rc=$?
check "-t refuses a message_size_limit over half of queue_map_size" test "$rc" -eq 1
check "... naming FILE:LINE and both values" \
	grep -q "size.conf:2: message_size_limit (41943040) exceeds what the queue can hold: at most half of queue_map_size (67108864)" "$tmp/out"
printf 'message_size_limit = 18446744073709551615\n' > "$tmp/size.conf"
"$relayd" -t -f "$tmp/size.conf" > "$tmp/out" 2>&1
rc=$?
check "-t refuses message_size_limit = 2^64-1" test "$rc" -eq 1

printf 'hostname = a\nbogus_key = 1\nsmtpd_timeout = 5x\nhostname = b\n' > "$tmp/bad.conf"
"$relayd" -t -f "$tmp/bad.conf" > "$tmp/out" 2>&1
rc=$?
check "-t exits 1 on errors" test "$rc" -eq 1
check "-t names the unknown key with FILE:LINE" grep -q "bad.conf:2: .*bogus_key" "$tmp/out"
check "-t reports a bad duration with FILE:LINE" grep -q "bad.conf:3: .*smtpd_timeout" "$tmp/out"
check "-t reports a duplicate with FILE:LINE" grep -q "bad.conf:4: .*hostname" "$tmp/out"

printf 'dkim_expire = 7d\n' > "$tmp/later.conf"
"$relayd" -t -f "$tmp/later.conf" > "$tmp/out" 2>&1
rc=$?
check "-t accepts a key whose feature has not landed" test "$rc" -eq 0
check "... and warns: not implemented yet" grep -q "dkim_expire: not implemented yet" "$tmp/out"

"$relayd" -t -f "$tmp/missing.conf" > "$tmp/out" 2>&1
rc=$?
check "-t on a missing file exits 1" test "$rc" -eq 1
check "... naming the file" grep -q "missing.conf" "$tmp/out"

"$relayd" -x > /dev/null 2>&1
rc=$?
check "unknown option: usage, exit 2" test "$rc" -eq 2
"$relayd" -F -f "$tmp/bad.conf" > "$tmp/out" 2>&1
rc=$?
check "the daemon refuses to start on a bad file (exit 78, EX_CONFIG)" test "$rc" -eq 78
"$relayd" -f "$tmp/bad.conf" > /dev/null 2>&1
rc=$?
check "... detached too (exit 78)" test "$rc" -eq 78

head -c 100000 /dev/urandom > "$tmp/random.conf"
"$relayd" -t -f "$tmp/random.conf" > /dev/null 2>&1
rc=$?
check "random bytes: exit 1, no crash" test "$rc" -eq 1

check "the shipped sample passes -t" "$relayd" -t -f "$top_srcdir/etc/relayd.conf"
check "the dev config passes -t" "$relayd" -t -f "$top_srcdir/etc/relayd.dev.conf"
done_testing
