//! The partner-center wire contract: prost messages and tonic clients and servers generated from
//! `proto/` at build time, plus the encoded descriptor set that gRPC reflection serves.
//!
//! Internal teams depend on this crate alone to call the services from Rust. The module tree
//! mirrors the protobuf packages because generated code refers to its neighbours by relative path.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod codec;
pub mod requests;

pub mod partnercenter {
    /// Shared types (`partnercenter.type.v1`).
    pub mod r#type {
        pub mod v1 {
            tonic::include_proto!("partnercenter.r#type.v1");
        }
    }

    /// `partnercenter.partner.v1`: partners and customers.
    pub mod partner {
        pub mod v1 {
            tonic::include_proto!("partnercenter.partner.v1");
        }
    }

    /// `partnercenter.relationship.v1`: reseller links and customer relationships.
    pub mod relationship {
        pub mod v1 {
            tonic::include_proto!("partnercenter.relationship.v1");
        }
    }

    /// `partnercenter.channel.v1`: subscriptions and support assignments.
    pub mod channel {
        pub mod v1 {
            tonic::include_proto!("partnercenter.channel.v1");
        }
    }

    /// `partnercenter.event.v1`: the change feed.
    pub mod event {
        pub mod v1 {
            tonic::include_proto!("partnercenter.event.v1");
        }
    }
}

pub use partnercenter::{channel, event, partner, relationship, r#type as types};

/// The encoded `FileDescriptorSet` of every partner-center proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("partnercenter_descriptor");
