"""Writes an OCI image layout holding `app:v1` with one layer of MIB MiB of pseudo-random
bytes (incompressible, generated quickly), for scripts/bench.sh."""
import hashlib, json, os, random, sys

out, mib = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)

def put(data: bytes) -> dict:
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}

rng = random.Random(1515)
h, tmp = hashlib.sha256(), os.path.join(blobs, "layer.tmp")
with open(tmp, "wb") as f:
    for _ in range(mib):
        chunk = rng.randbytes(1 << 20)
        h.update(chunk)
        f.write(chunk)
layer = {"digest": "sha256:" + h.hexdigest(), "size": mib << 20}
os.rename(tmp, os.path.join(blobs, h.hexdigest()))
config = put(json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode())
manifest = put(json.dumps({
    "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
}).encode())
with open(os.path.join(out, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
        "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
