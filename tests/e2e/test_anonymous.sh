#!/bin/bash
# tests/e2e/test_anonymous.sh - with --anonymous-auth a request without
# credentials is system:anonymous and RBAC decides: public information
# (/version) is readable, objects are not.
. "$(dirname "$0")/lib.sh"

start_server --tls --anonymous-auth || bail_out "server did not start"
expect_contains "/version is public" '"major":"1"' curl -s -k --max-time 10 "$E2E_URL/version"
body=$(curl -s -k --max-time 10 "$E2E_URL/api/v1/namespaces")
like "$body" '"code":403' "listing namespaces anonymously is forbidden"
like "$body" 'User \"system:anonymous\"' "the denial names system:anonymous"
stop_server_cleanly
done_testing
