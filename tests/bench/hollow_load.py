#!/usr/bin/env python3
# tests/bench/hollow_load.py - load for tests/bench/hollow_bench: creates
# pods bound round-robin to hollow nodes (spec.nodeName set, as if a
# scheduler had placed them) over keep-alive connections from the admin
# kubeconfig, then waits until all of them are Running. Prints
# created_per_s, running_s (first create to all Running) and the p50/p99
# of creation-to-Running from each pod's startTime/containerStatuses.
#
#   hollow_load.py KUBECONFIG PODS NODES PREFIX [CONNS]
import base64
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from urllib.parse import urlparse

kubeconfig, pods, nodes, prefix = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conns = int(sys.argv[5]) if len(sys.argv) > 5 else 16

kc = json.load(open(kubeconfig))
cluster = kc["clusters"][0]["cluster"]
user = kc["users"][0]["user"]
url = urlparse(cluster["server"])
tmp = tempfile.mkdtemp()


def pem(field, src):
    data = src.get(field + "-data")
    if not data:
        return None
    path = os.path.join(tmp, field)
    with open(path, "wb") as f:
        f.write(base64.b64decode(data))
    return path


ctx = None
if url.scheme == "https":
    ctx = ssl.create_default_context(cafile=pem("certificate-authority", cluster))
    cert, key = pem("client-certificate", user), pem("client-key", user)
    if cert:
        ctx.load_cert_chain(cert, key)


def connect():
    if ctx:
        return http.client.HTTPSConnection(url.hostname, url.port, context=ctx)
    return http.client.HTTPConnection(url.hostname, url.port)


def request(c, method, path, body=None):
    c.request(method, path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()


NS = "hollow-load"
c = connect()
request(c, "POST", "/api/v1/namespaces",
        json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))

errors = []


def worker(first, step):
    c = connect()
    for i in range(first, pods, step):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "load-%d" % i, "namespace": NS},
               "spec": {"nodeName": "%s%d" % (prefix, i % nodes),
                        "containers": [{"name": "main", "image": "registry.local/app:1"}]}}
        st, body = request(c, "POST", "/api/v1/namespaces/%s/pods" % NS, json.dumps(pod))
        if st != 201:
            errors.append((st, body[:200]))


t0 = time.time()
threads = [threading.Thread(target=worker, args=(k, conns)) for k in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
t_created = time.time() - t0
if errors:
    print("create errors: %d, first: %s" % (len(errors), errors[0]))

# until every pod is Running: count those that are not
while True:
    st, body = request(c, "GET", "/api/v1/namespaces/%s/pods?limit=1&fieldSelector=status.phase%%21%%3DRunning" % NS)
    obj = json.loads(body)
    left = len(obj.get("items", [])) + obj.get("metadata", {}).get("remainingItemCount", 0)
    if left == 0 or time.time() - t0 > 600:
        break
    time.sleep(1)  # each poll scans every pod on the server: not too often
t_running = time.time() - t0

st, body = request(c, "GET", "/api/v1/namespaces/%s/pods" % NS)
lat = []
for p in json.loads(body)["items"]:
    created = p["metadata"]["creationTimestamp"]
    started = p["status"].get("containerStatuses", [{}])[0].get("state", {}).get("running", {}).get("startedAt")
    if started:
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        lat.append(time.mktime(time.strptime(started, fmt)) - time.mktime(time.strptime(created, fmt)))
lat.sort()
print("pods=%d created_per_s=%.0f running_s=%.2f (first create to all %d Running; %d left)"
      % (pods, pods / t_created, t_running, pods, left))
if lat:
    print("create_to_running_s (1 s resolution): p50=%.0f p99=%.0f max=%.0f"
          % (lat[len(lat) // 2], lat[int(len(lat) * 0.99)], lat[-1]))
