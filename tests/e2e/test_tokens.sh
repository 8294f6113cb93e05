#!/bin/bash
# tests/e2e/test_tokens.sh - bearer tokens: a ServiceAccount token from
# `kubectl create token` lists pods only once bound; tampered, wrongly
# signed and expired tokens get 401; a deleted ServiceAccount's token stops
# working; static tokens from --token-auth-file; the JWKS is published.
. "$(dirname "$0")/lib.sh"

printf 'static-token-123,bob,1001,"devs,qa"\n' >"$E2E_TMP/tokens.csv"
start_server --tls --token-auth-file "$E2E_TMP/tokens.csv" || bail_out "server did not start"
PODS=$E2E_URL/api/v1/namespaces/default/pods
code() { curl -s -k --max-time 10 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$PODS"; }

ok "create a service account" k create serviceaccount robot
TOKEN=$(k create token robot --duration=20m)
like "$TOKEN" "eyJ" "kubectl create token prints a JWT"
is "$(code "$TOKEN")" 403 "an unbound service account cannot list pods (403)"
ok "bind it to view" k create rolebinding robot-view --clusterrole=view --serviceaccount=default:robot
is "$(code "$TOKEN")" 200 "once bound it lists pods"
review=$(printf '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":"%s"}}' "$TOKEN" |
	k create -f - -o 'jsonpath={.status.authenticated} {.status.user.username}')
is "$review" "true system:serviceaccount:default:robot" "a TokenReview authenticates the token for other components"
sar=$(printf '%s' '{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"user":"system:serviceaccount:default:robot","resourceAttributes":{"verb":"delete","resource":"pods","namespace":"default"}}}' |
	k create -f - -o 'jsonpath={.status.allowed}')
is "$sar" false "a SubjectAccessReview answers for a user it names (view cannot delete)"
expect_contains "whoami with the token names the service account" \
	"system:serviceaccount:default:robot" \
	kubectl --kubeconfig=/dev/null --server "$E2E_URL" --insecure-skip-tls-verify --token "$TOKEN" auth whoami
# change one character in the middle of the signature (never a no-op)
mid=$((${#TOKEN} - 20))
c=${TOKEN:$mid:1}
[ "$c" = A ] && r=B || r=A
is "$(code "${TOKEN:0:$mid}$r${TOKEN:$((mid + 1))}")" 401 "a tampered token gets 401"

# tokens signed by another key, and an expired one signed by the right key
python3 - "$E2E_DATA/pki/sa.key" "$E2E_TMP" <<'PY'
import base64, json, subprocess, sys, time
key, tmp = sys.argv[1], sys.argv[2]
def b64(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
def der_to_raw(der):
    # SEQUENCE { INTEGER r, INTEGER s }, then the low-s form JWTs must use
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7f)
    vals = []
    for _ in range(2):
        assert der[i] == 2
        n = der[i + 1]; vals.append(int.from_bytes(der[i + 2:i + 2 + n], 'big')); i += 2 + n
    r, s = vals
    if s > N // 2: s = N - s
    return r.to_bytes(32, 'big') + s.to_bytes(32, 'big')
def jwt(keyfile, exp, name):
    now = int(time.time())
    h = b64(json.dumps({"alg": "ES256"}).encode())
    c = b64(json.dumps({"iss": "https://kubernetes.default.svc.cluster.local",
        "aud": ["https://kubernetes.default.svc.cluster.local"], "exp": exp, "iat": now - 7200,
        "nbf": now - 7200, "sub": "system:serviceaccount:default:robot",
        "kubernetes.io": {"namespace": "default", "serviceaccount": {"name": "robot", "uid": "x"}}}).encode())
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keyfile],
                         input=(h + "." + c).encode(), capture_output=True, check=True).stdout
    open(tmp + "/" + name, "w").write(h + "." + c + "." + b64(der_to_raw(der)))
subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", tmp + "/other.key"], check=True)
jwt(tmp + "/other.key", int(time.time()) + 3600, "foreign.jwt")
jwt(key, int(time.time()) - 60, "expired.jwt")
PY
is "$(code "$(cat "$E2E_TMP/foreign.jwt")")" 401 "a token signed by another key gets 401"
# the same valid token spelled differently: the other ECDSA form (r, n - s), and padded
python3 - "$TOKEN" "$E2E_TMP" <<'PY'
import base64, sys
tok, tmp = sys.argv[1], sys.argv[2]
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
h, c, sig = tok.split('.')
raw = base64.urlsafe_b64decode(sig + '=' * (-len(sig) % 4))
r, s = raw[:32], int.from_bytes(raw[32:], 'big')
alt = base64.urlsafe_b64encode(r + (N - s).to_bytes(32, 'big')).rstrip(b'=').decode()
open(tmp + '/highs.jwt', 'w').write(h + '.' + c + '.' + alt)
PY
is "$(code "$(cat "$E2E_TMP/highs.jwt")")" 401 "the high-s spelling of a valid signature gets 401"
is "$(code "${TOKEN}==")" 401 "a padded spelling of a valid token gets 401"
body=$(curl -s -k --max-time 10 -H "Authorization: Bearer $(cat "$E2E_TMP/expired.jwt")" "$PODS")
like "$body" '"code":401' "an expired token gets 401"
unlike "$body" "expired" "the answer does not say which check failed"
ok "the server's log says why" grep -q "bearer token refused.*expired" "$E2E_TMP/server.log"

ok "delete the service account" k delete serviceaccount robot
is "$(code "$TOKEN")" 401 "a deleted service account's token stops working"

expect_contains "a static token authenticates its user" bob \
	kubectl --kubeconfig=/dev/null --server "$E2E_URL" --insecure-skip-tls-verify \
	--token static-token-123 auth whoami
expect_contains "with the groups of the token file" devs \
	kubectl --kubeconfig=/dev/null --server "$E2E_URL" --insecure-skip-tls-verify \
	--token static-token-123 auth whoami
expect_contains "the JWKS is published" '"alg":"ES256"' curl -s -k --max-time 10 "$E2E_URL/openid/v1/jwks"
expect_contains "with OpenID discovery" '"jwks_uri"' \
	curl -s -k --max-time 10 "$E2E_URL/.well-known/openid-configuration"

# --- bootstrap tokens (skiff token create) -------------------------------------------------------
_run "$SKIFF_BIN" token create --data-dir "$E2E_DATA" --ttl 1h
BOOT=$OUT hashline=$ERR
like "$BOOT" "." "skiff token create prints a token"
ok "the token has the id.secret form" sh -c "echo '$BOOT' | grep -qE '^[a-z0-9]{6}\.[a-z0-9]{16}$'"
want=$(openssl x509 -in "$E2E_DATA/pki/ca.crt" -pubkey -noout | openssl pkey -pubin -outform der |
	sha256sum | cut -d' ' -f1)
like "$hashline" "sha256:$want" "it prints the hash of the CA's public key"
expect_contains "a bootstrap token authenticates as system:bootstrap:<id>" \
	"system:bootstrap:${BOOT%%.*}" \
	kubectl --kubeconfig=/dev/null --server "$E2E_URL" --insecure-skip-tls-verify --token "$BOOT" auth whoami
expect_contains "... in group system:bootstrappers" system:bootstrappers \
	kubectl --kubeconfig=/dev/null --server "$E2E_URL" --insecure-skip-tls-verify --token "$BOOT" auth whoami
is "$(code "${BOOT%.*}.0000000000000000")" 401 "a wrong bootstrap secret gets 401"
SHORT=$("$SKIFF_BIN" token create --data-dir "$E2E_DATA" --ttl 1s 2>/dev/null)
sleep 2
is "$(code "$SHORT")" 401 "an expired bootstrap token gets 401"

stop_server_cleanly
done_testing
