//! A streamed copy between layouts keeps memory flat: a blob far larger than the copy buffer
//! is never held in memory. Alone in its test binary, so the process's peak memory is its own.

mod layout_support;

use std::fs::{self, File};
use std::io::Write;
use std::time::Instant;

use floe_promotion::registry::{Manifest, ManifestBody, OCI_MANIFEST};
use floe_promotion::{ArtifactRegistry, Digest, Reference};
use floe_promotion_oci::OciLayoutRegistry;
use layout_support::*;
use sha2::{Digest as _, Sha256};

const BLOB_MIB: usize = 40;

/// The process's peak resident memory (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_copy_of_a_large_blob_keeps_memory_flat() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let (src, dst) = (location(&a), location(&b));
    let registry = OciLayoutRegistry::new().with_hard_links(false);
    let config = registry
        .push_blob(&src, b"{}".to_vec())
        .await
        .expect("config");

    // Write the large layer straight into the layout, 1 MiB at a time.
    let scratch = tmp.path().join("layer");
    let mut file = File::create(&scratch).expect("layer file");
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    for i in 0..BLOB_MIB {
        chunk
            .iter_mut()
            .enumerate()
            .for_each(|(j, b)| *b = (i * 31 + j) as u8);
        hasher.update(&chunk);
        file.write_all(&chunk).expect("write layer");
    }
    drop(file);
    let layer = Digest::new(format!("sha256:{}", hex::encode(hasher.finalize()))).unwrap();
    fs::rename(&scratch, a.join("blobs/sha256").join(layer.hex())).expect("place layer");
    let size = (BLOB_MIB << 20) as u64;
    let mut layer_descriptor = descriptor("application/vnd.oci.image.layer.v1.tar", b"");
    layer_descriptor.digest = layer.clone();
    layer_descriptor.size = size;
    let body = ManifestBody {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.into()),
        config: Some(descriptor("application/vnd.oci.empty.v1+json", b"{}")),
        layers: vec![layer_descriptor],
        ..Default::default()
    };
    assert_eq!(body.config.as_ref().unwrap().digest, config);
    let manifest = Manifest::from_bytes(serde_json::to_vec(&body).unwrap(), None).unwrap();
    registry
        .put_manifest(&src, Some(&tag("big")), &manifest)
        .await
        .expect("put");

    let before = peak_rss_kib();
    let started = Instant::now();
    let report = registry
        .copy(&src, &dst, manifest.digest())
        .await
        .expect("copy");
    let elapsed = started.elapsed();
    let growth_mib = (peak_rss_kib().saturating_sub(before)) / 1024;
    eprintln!(
        "streamed {BLOB_MIB} MiB in {elapsed:?} ({:.0} MiB/s), peak memory grew by {growth_mib} MiB",
        BLOB_MIB as f64 / elapsed.as_secs_f64()
    );
    assert_eq!(report.bytes_uploaded, size + 2);
    assert!(
        growth_mib < 16,
        "peak memory grew by {growth_mib} MiB while copying a {BLOB_MIB} MiB blob"
    );
    assert_eq!(
        fs::metadata(b.join("blobs/sha256").join(layer.hex()))
            .unwrap()
            .len(),
        size
    );
    registry
        .resolve(&dst, &Reference::Digest(manifest.digest().clone()))
        .await
        .expect("copied manifest");
}
