//! Starts an upload and never finishes it, for the tests of what a control
//! plane keeps when a client goes away mid-upload:
//! `partial_upload <url> binary|blob <MiB>` sends that many MiB, then waits
//! until it is killed. Its token is `MODAL_TOKEN`.

use futures::StreamExt;
use modal_runtime::proto::control_plane_client::ControlPlaneClient;
use modal_runtime::proto::{BinaryChunk, BlobChunk};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: partial_upload <url> binary|blob <MiB>";
    let url = args.next().expect(usage);
    let kind = args.next().expect(usage);
    let mib: usize = args.next().expect(usage).parse().expect(usage);
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("a URL")
        .connect()
        .await
        .expect("reach the control plane");
    let token: tonic::metadata::AsciiMetadataValue = format!(
        "Bearer {}",
        std::env::var("MODAL_TOKEN").expect("MODAL_TOKEN")
    )
    .parse()
    .expect("a token");
    let mut rpc = ControlPlaneClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
        r.metadata_mut().insert("authorization", token.clone());
        Ok(r)
    });
    let chunk = vec![7_u8; 1 << 20];
    // The stream never ends: the upload stays open until the process dies.
    let result = match kind.as_str() {
        "binary" => {
            let chunks = futures::stream::iter((0..mib).map(move |_| BinaryChunk {
                data: chunk.clone().into(),
                sha256: String::new(),
            }))
            .chain(futures::stream::pending());
            rpc.upload_binary(chunks).await.map(|_| ())
        }
        "blob" => {
            let chunks = futures::stream::iter((0..mib).map(move |_| BlobChunk {
                data: chunk.clone().into(),
            }))
            .chain(futures::stream::pending());
            rpc.put_blob(chunks).await.map(|_| ())
        }
        other => panic!("{usage} (got `{other}`)"),
    };
    eprintln!("the upload ended: {result:?}");
    std::process::exit(1);
}
