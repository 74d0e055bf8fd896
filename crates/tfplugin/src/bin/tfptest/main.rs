//! `terraform-provider-tfptest`: the test provider for this crate's
//! end-to-end tests and benchmark. It exercises every feature of the
//! framework against a backing store of JSON files in a directory given by
//! the provider configuration, so tests can change things out of band.

mod provider;

fn main() -> std::process::ExitCode {
    tfplugin::serve(
        "tfptest",
        "example.local/test/tfptest",
        provider::TestProvider,
    )
}
