#!/bin/bash
# tests/e2e/test_encryption.sh - secrets are encrypted at rest: the store's
# files never hold a secret's value (plain or base64), secrets read back
# after a restart, and a key rotation through an EncryptionConfiguration
# keeps old secrets readable while new writes use the new key.
. "$(dirname "$0")/lib.sh"

VALUE=Sk1ffPlainSecretValue42
B64=$(printf %s "$VALUE" | base64)

# store_has STRING: does any of the store's files (db, WAL) contain it?
store_has() {
	cat "$E2E_DATA"/store.db* 2>/dev/null | grep -a -q -- "$1"
}

start_server || bail_out "server did not start"
ok "create a secret" k create secret generic creds --from-literal=password="$VALUE"
ok "create a configmap" k create configmap plain --from-literal=note=VisibleConfigValue
expect_output "the secret reads back" "$VALUE" \
	sh -c "kubectl get secret creds -o jsonpath='{.data.password}' | base64 -d"
ok "the key file exists" test -s "$E2E_DATA/secrets.key"
is "$(stat -c %a "$E2E_DATA/secrets.key")" 600 "the key file is mode 0600"
stop_server_cleanly
ok "the store does not hold the secret's value" not store_has "$VALUE"
ok "the store does not hold the secret's base64 value" not store_has "$B64"
ok "the store holds sealed values" store_has "k8s:enc:aesgcm:v1:"
ok "configmaps are not encrypted" store_has VisibleConfigValue

restart_server || bail_out "server did not restart"
expect_output "the secret reads back after a restart" "$VALUE" \
	sh -c "kubectl get secret creds -o jsonpath='{.data.password}' | base64 -d"

# --- rotation: a configuration with a new first key and the old one --------------
OLD=$(cat "$E2E_DATA/secrets.key")
NEW=$(head -c 32 /dev/urandom | base64)
cat >"$E2E_TMP/enc.yaml" <<EOC
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: second
              secret: $NEW
      - aesgcm:
          keys:
            - name: default
              secret: $OLD
      - identity: {}
EOC
stop_server
E2E_SERVER_ARGS="--plain-http --encryption-provider-config $E2E_TMP/enc.yaml"
restart_server || bail_out "server did not restart with the encryption configuration"
expect_output "a secret written with the old key is still readable" "$VALUE" \
	sh -c "kubectl get secret creds -o jsonpath='{.data.password}' | base64 -d"
ok "a new secret is written" k create secret generic fresh --from-literal=k=AnotherSecretValue77
# rewriting every secret brings it to the first key (as Kubernetes documents);
# the store writes it although nothing changed, so it gets a new version
rv_before=$(jp secret/creds '{.metadata.resourceVersion}')
ok "rewrite all secrets" sh -c 'kubectl get secrets -o json | kubectl replace -f -'
rv_after=$(jp secret/creds '{.metadata.resourceVersion}')
ok "the rewrite stored the old secret again (re-encrypted)" test "$rv_after" -gt "$rv_before"
stop_server_cleanly
ok "new writes use the first key" store_has "k8s:enc:aesgcm:v1:second:"
ok "no secret value in the store after the rotation" not store_has AnotherSecretValue77
restart_server || bail_out "server did not restart"
expect_output "both secrets read back" "$VALUE AnotherSecretValue77" \
	sh -c "echo \$(kubectl get secret creds -o jsonpath='{.data.password}' | base64 -d) \$(kubectl get secret fresh -o jsonpath='{.data.k}' | base64 -d)"

# --- a bad configuration stops the server with a clear message ------------------------
stop_server
printf 'apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n            - name: k\n              secret: c2hvcnQ=\n' >"$E2E_TMP/bad.yaml"
XX

done_testing
