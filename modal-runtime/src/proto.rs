//! Generated gRPC types and services (`proto/modal.proto`).
#![allow(clippy::all, missing_docs)]

tonic::include_proto!("modal.v1");
