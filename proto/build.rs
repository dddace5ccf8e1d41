//! Compiles the `.proto` files with protox (pure Rust), so building Strata's own protocol needs
//! no system `protoc`. Only with the `grpc` feature: the error codes need no generated code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "grpc")]
    {
        let protos = ["strata/v1/broker.proto", "strata/v1/strata.proto"];
        for proto in protos {
            println!("cargo:rerun-if-changed={proto}");
        }
        let descriptors = protox::compile(protos, ["."])?;
        tonic_prost_build::configure()
            .bytes(".")
            .codec_path("crate::codec::ReservingCodec")
            .compile_fds(descriptors)?;
    }
    Ok(())
}
