#!/bin/bash
# tests/e2e/test_node_authz.sh - node credentials (user system:node:NAME in
# group system:nodes) may change only their own Node and Lease, the status
# of pods bound to them, and read only the Secrets and ConfigMaps those pods
# use.
. "$(dirname "$0")/lib.sh"

start_server --tls || bail_out "server did not start"
ok "make node credentials for n1" "$SKIFF_BIN" user create system:node:n1 --group system:nodes \
	--data-dir "$E2E_DATA" --out "$E2E_TMP/n1.kubeconfig"
n1() { timeout 20 kubectl --kubeconfig "$E2E_TMP/n1.kubeconfig" --request-timeout=10s "$@"; }
for n in n1 n2; do
	ok "the admin registers node $n" k create -f - <<EOF2
apiVersion: v1
kind: Node
metadata: {name: $n}
EOF2
done
ok "n1 labels its own Node" n1 label node n1 zone=a
expect_fail_with "n1 cannot change another node" 'nodes "n2" is forbidden: User "system:node:n1"' \
	n1 label node n2 zone=b
ok "the admin makes the secrets and the pods" k apply -f - <<'EOF2'
apiVersion: v1
kind: Secret
metadata: {name: used-by-n1}
stringData: {k: v}
---
apiVersion: v1
kind: Secret
metadata: {name: unrelated}
stringData: {k: v}
---
apiVersion: v1
kind: Pod
metadata: {name: on-n1}
spec:
  nodeName: n1
  containers:
    - name: c
      image: busybox
      env:
        - name: K
          valueFrom: {secretKeyRef: {name: used-by-n1, key: k}}
---
apiVersion: v1
kind: Pod
metadata: {name: on-n2}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
EOF2
ok "n1 reads a secret its pod uses" n1 get secret used-by-n1
ok "n1 lists that secret by name, as a kubelet does" \
	n1 get secrets --field-selector metadata.name=used-by-n1
expect_fail_with "n1 cannot read a secret no pod of its uses" 'cannot get resource "secrets"' \
	n1 get secret unrelated
ok "n1 updates the status of its pod" n1 patch pod on-n1 --subresource=status --type=merge \
	-p '{"status":{"phase":"Running"}}'
expect_fail_with "n1 cannot update the status of n2's pod" 'forbidden' \
	n1 patch pod on-n2 --subresource=status --type=merge -p '{"status":{"phase":"Running"}}'
stop_server_cleanly
done_testing
